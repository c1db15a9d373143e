// A session's terminal (attach), its execs and its service tunnels, relayed: checks who
// may open one and whether the session can take it, opens the agent's WebSocket without
// blocking the caller, then relays it to the client's (StreamRelay). Counts each
// session's connections against interactive.max-connections-per-session and remembers
// when its traffic last passed, for the session's idle time.
//
// Threads: API threads open; the connector's thread answers them and runs agent sides;
// the HTTP server's threads run client sides. State shared between them sits behind one
// mutex (Shared); nothing here holds the ledger's lock while it waits.
#pragma once

#include "agent_client.hpp"
#include "caller.hpp"
#include "domain_error.hpp"
#include "ledger.hpp"
#include "manager_config.hpp"
#include "session_service.hpp"
#include "stream_relay.hpp"
#include "websocket.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace bai::manager {

// What a client asks to reach in a session; the agent serves the same paths.
enum class StreamKind { Attach, Exec, Service };

struct StreamTarget {
  std::string sessionId;
  StreamKind kind = StreamKind::Attach;
  std::string service = "";  // StreamKind::Service: the service's name
  std::string query = "";    // passed to the agent unchanged ("command=...&tty=1"), without '?'

  // The agent's path and query for it: "/v1/sessions/<id>/exec?command=...".
  std::string agentTarget() const;
};

// An agent's WebSocket, accepted by the agent, waiting for the client's to be accepted.
// Dropped without being relayed, it closes the agent's side and frees its connection.
class PendingStream {
 public:
  ~PendingStream();
  PendingStream(const PendingStream&) = delete;
  PendingStream& operator=(const PendingStream&) = delete;

 private:
  friend class InteractiveStreams;
  struct Ticket;
  PendingStream(std::shared_ptr<ws::WebSocket> agent, std::shared_ptr<Ticket> ticket)
      : agent_(std::move(agent)), ticket_(std::move(ticket)) {}

  std::shared_ptr<ws::WebSocket> agent_;  // null once relayed
  std::shared_ptr<Ticket> ticket_;
};

// How an open ended: the agent's socket, or the agent's own refusal to pass on as it is.
struct StreamOpening {
  std::shared_ptr<PendingStream> stream;  // set when the agent accepted
  std::optional<AgentReply> refusal;      // set when it answered something else (404 no-such-service, ...)
};

class InteractiveStreams {
 public:
  using OpenCallback = std::function<void(Outcome<StreamOpening>)>;

  InteractiveStreams(Ledger& ledger, SessionService& sessions, std::string clusterToken, const ManagerSettings& settings,
                     LogSink log);
  ~InteractiveStreams();  // closes every stream
  InteractiveStreams(const InteractiveStreams&) = delete;
  InteractiveStreams& operator=(const InteractiveStreams&) = delete;

  // Checks that `caller` sees the session (its owner or an admin), that it runs, that an
  // attach has a stdin to attach to and that a connection is free, then opens the
  // agent's WebSocket. `done` runs once: on the caller's thread when refused here, on the
  // connector's thread once the agent answered.
  void open(const Caller& caller, const StreamTarget& target, OpenCallback done);
  // Relays the client's freshly accepted socket to the stream's agent side until either closes.
  void relay(const std::shared_ptr<PendingStream>& stream, std::shared_ptr<ws::WebSocket> client);

  // The options of both legs' WebSockets (interactive.max-frame-bytes, idle-timeout).
  ws::Options socketOptions() const { return options_; }
  // When a message of the session's streams last passed, in ms since the epoch (nullopt: never since the start).
  std::optional<std::int64_t> lastActivityMillis(const std::string& sessionId) const;
  // The session's connections, open or opening.
  int connections(const std::string& sessionId) const;
  // Bytes queued by every relay towards its peers: what slow clients cost the manager.
  std::size_t queuedBytes() const;
  // Streams being relayed now, all sessions together.
  std::size_t relayedStreams() const;
  // Closes every stream (1001) and refuses new ones.
  void shutdown();

 private:
  struct SessionStreams {
    int connections = 0;
    std::shared_ptr<std::atomic<std::int64_t>> lastActivity = std::make_shared<std::atomic<std::int64_t>>(0);
    std::set<std::shared_ptr<StreamRelay>> relays;
  };
  // Outlives this object in the callbacks that still run on I/O threads, which hold it weakly.
  struct Shared {
    mutable std::mutex mutex;
    bool stopping = false;
    std::map<std::string, SessionStreams> sessions;
  };

  // The agent's RPC URL for the session's agent, or why it cannot be reached.
  Outcome<std::string> agentUrlOf(const SessionRecord& session) const;
  // A connection of the session, or a refusal when all are taken.
  Outcome<std::shared_ptr<PendingStream::Ticket>> reserve(const std::string& sessionId);
  // Drops what is kept of sessions that ended and have no connection left.
  void forgetEndedSessions();
  void log(LogLevel level, const std::string& message) const;

  Ledger& ledger_;
  SessionService& sessions_;
  const std::string clusterToken_;  // never logged
  const InteractiveLimits limits_;
  const ws::Options options_;
  const std::chrono::milliseconds connectTimeout_;
  const std::string agentCaFile_;
  LogSink log_;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<ws::Connector> connector_;  // last: its thread ends before the rest goes
};

}  // namespace bai::manager
