// The user's sessions: submit, list, look up, long-poll, destroy, and read logs. Checks
// requests against the cluster's slots, the owner's quota and the group's admission,
// then writes through the ledger; never calls an agent itself (logs go through the
// AgentDispatcher and are answered from its thread).
//
// Threads: API threads. Keeps no state of its own.
#pragma once

#include "agent_dispatcher.hpp"
#include "caller.hpp"
#include "domain_error.hpp"
#include "ledger.hpp"
#include "session_lifecycle.hpp"
#include "vfolder_service.hpp"
#include "waiters.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bai::manager {

struct NewSession {
  std::string name;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::vector<std::pair<std::string, std::string>> resources;  // as the user typed them: {"mem", "4g"}
  std::string scalingGroup = "default";
  // The image to run it in (a container session); nullopt: a host process. With an image
  // `command` may be empty: the image's default command runs.
  std::optional<std::string> image = std::nullopt;
  // The client's Idempotency-Key header; empty: none. A retry with the same key and
  // request gets the session the first one created.
  std::string idempotencyKey = "";
  // Interactive: stdin kept open for attach, on a terminal with `tty` (which implies it).
  bool openStdin = false;
  bool tty = false;
  std::vector<protocol::ServicePort> servicePorts = {};  // names unique, at most protocol::kMaxServicePorts
  // Folders to bind, as asked; Manager::createSession resolves them (VfolderService).
  std::vector<MountRequest> mounts = {};
};

// A read of a session's log as GET .../logs asks for it: bytes from `offset` (at most
// `limit`), or the last `tail` bytes. Either is cut to one page (protocol::kLogPageBytes).
struct LogRange {
  std::string stream = "stdout";
  std::uint64_t offset = 0;
  std::optional<std::uint64_t> limit;
  std::optional<std::uint64_t> tail;
};

class SessionService {
 public:
  using Guard = Ledger::Guard;
  using SessionCallback = Waiters::SessionCallback;
  using ReplyCallback = AgentDispatcher::ReplyCallback;

  SessionService(Ledger& ledger, SessionLifecycle& lifecycle, AgentDispatcher& dispatcher, Waiters& waiters);

  // `mounts`: the request's mounts as VfolderService::resolveMounts resolved them.
  Outcome<SessionRecord> create(const Caller& caller, const NewSession& request, std::vector<SessionMount> mounts = {});
  // Users see their own; admins see all.
  Outcome<std::vector<SessionRecord>> list(const Caller& caller, std::optional<SessionStatus> status);
  Outcome<SessionRecord> get(const Caller& caller, const std::string& id);
  // Answers once the session is over or after `wait` (capped by manager.max-wait).
  void wait(const Caller& caller, const std::string& id, std::chrono::milliseconds wait, SessionCallback done);
  Outcome<SessionRecord> destroy(const Caller& caller, const std::string& id);
  // The agent's answer to a read of `range` (at most one page), passed through; `done`
  // runs once.
  void logs(const Caller& caller, const std::string& id, const LogRange& range, ReplyCallback done);
  // Why a pending session waits; empty when it does not.
  std::string pendingReason(const std::string& id) const;

 private:
  // The session `caller` created earlier with the request's idempotency key, if any; a
  // refusal when that key came with another request.
  Outcome<std::optional<SessionRecord>> earlierWithKey(const ClusterState& state, const Caller& caller,
                                                       const NewSession& request, const std::string& digest) const;
  // Why `request` of `caller` cannot be queued now; nullopt when it can.
  Outcome<ResourceSlot> admit(const ClusterState& state, const Caller& caller, const NewSession& request) const;

  Ledger& ledger_;
  SessionLifecycle& lifecycle_;
  AgentDispatcher& dispatcher_;
  Waiters& waiters_;
};

}  // namespace bai::manager
