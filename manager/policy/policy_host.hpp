// Scheduling policies loaded from plugins (<bai/scheduler.h>): a catalog that reads each
// module's identity and call table before using it, and typed instances whose answers are
// checked before the scheduler trusts them. A broken module is skipped and reported.
#pragma once

#include "log_sink.hpp"

#include <bai/result.hpp>
#include <bai/scheduler.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace bai::manager {

enum class PolicyKind { Sequencer, Selector };

const char* policyKindName(PolicyKind kind);

struct PolicyIdentity {
  std::string name;
  std::string version;
  std::string description;
  PolicyKind kind = PolicyKind::Sequencer;
  std::uint32_t abiMajor = 0;
  std::uint32_t abiMinor = 0;
  std::filesystem::path file;
};

struct SkippedPolicy {
  std::filesystem::path file;
  std::string name;  // empty when the identity could not be read
  std::string reason;
};

struct PolicyModule;  // a loaded module with its checked identity and call table

// Orders the pending sessions of one scaling group. Not thread-safe: one caller at a time.
class Sequencer {
 public:
  ~Sequencer();  // destroys the policy's instance
  Sequencer(const Sequencer&) = delete;
  Sequencer& operator=(const Sequencer&) = delete;

  // A permutation of 0..session_count-1; an error when the policy fails or answers
  // something else (the caller then falls back to submission order and logs it).
  Result<std::vector<std::uint32_t>> order(const bai_pending_view& pending);
  const std::string& name() const;

 private:
  friend class PolicyCatalog;
  Sequencer(std::shared_ptr<const PolicyModule> module, bai_policy* instance);
  std::shared_ptr<const PolicyModule> module_;  // keeps the code mapped while the instance lives
  bai_policy* instance_;
};

// Picks one agent among candidates that all fit a session. Not thread-safe.
class Selector {
 public:
  ~Selector();
  Selector(const Selector&) = delete;
  Selector& operator=(const Selector&) = delete;

  // An index into the candidates; an error when the policy fails or answers out of range
  // (the caller then takes the first candidate and logs it).
  Result<std::uint32_t> select(const bai_session_view& session, const bai_candidate_view& candidates);
  std::uint32_t preference() const;  // BAI_PREFER_*
  const std::string& name() const;

 private:
  friend class PolicyCatalog;
  Selector(std::shared_ptr<const PolicyModule> module, bai_policy* instance);
  std::shared_ptr<const PolicyModule> module_;
  bai_policy* instance_;
};

class PolicyCatalog {
 public:
  // Loads every *.so of `dirs` (in order, files sorted by name). A file that is not a
  // usable policy is skipped with a log line naming it and why; the first of two policies
  // with one name wins. A missing directory is a warning; a path that is not a readable
  // directory is an error.
  static Result<PolicyCatalog> load(const std::vector<std::filesystem::path>& dirs, LogSink log);

  std::vector<std::string> names(PolicyKind kind) const;  // sorted
  const std::vector<SkippedPolicy>& skipped() const { return skipped_; }

  // A new instance configured by `optionsJson` (a JSON object as text).
  Result<std::unique_ptr<Sequencer>> makeSequencer(const std::string& name, const std::string& optionsJson) const;
  Result<std::unique_ptr<Selector>> makeSelector(const std::string& name, const std::string& optionsJson) const;

 private:
  void loadFile(const std::filesystem::path& file);
  void skip(const std::filesystem::path& file, const std::string& name, const std::string& reason);
  Result<std::pair<std::shared_ptr<const PolicyModule>, bai_policy*>> create(const std::string& name, PolicyKind kind,
                                                                             const std::string& optionsJson) const;

  LogSink log_;
  std::vector<std::shared_ptr<const PolicyModule>> modules_;
  std::vector<SkippedPolicy> skipped_;
};

}  // namespace bai::manager
