// A session's files under <state-dir>/sessions/<id>: the agent's record.json, which lets a
// restarted agent know what each session holds, and the stdout/stderr logs the runner writes.
// Stateless apart from the directory: safe from any thread, one writer per session at a time.
#pragma once

#include "agent/agent_ledger.hpp"
#include "log.hpp"

#include <bai/result.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace bai::core {

// Part of a session's log stream: `text` starts at byte `offset` of a stream that held
// `size` bytes when it was read.
struct LogPage {
  std::string text;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

class SessionRecords {
 public:
  explicit SessionRecords(std::filesystem::path stateDir);

  const std::filesystem::path& stateDir() const { return stateDir_; }
  std::filesystem::path dirOf(const std::string& id) const;
  // Creates the sessions directory itself; fails with the reason when it cannot.
  Result<void> createRoot() const;
  // Writes record.json atomically, creating the session's directory.
  Result<void> save(const SessionRecord& session) const;
  // save() for a session already under way: a failure cannot undo what happened, so it
  // is logged; a restart would find the previous record.
  void update(const SessionRecord& session, const LogSink& log) const;
  // Every readable record, as saved: `released` set and no allocation resolved yet. An
  // unreadable record is logged and left on disk; a directory without one is skipped.
  std::vector<SessionRecord> loadAll(const LogSink& log) const;
  // Bytes [offset, offset + limit) of the session's "stdout" or "stderr" log, or its last
  // `tail` bytes, at most protocol::kLogPageBytes of them; empty when the log does not
  // exist yet.
  LogPage readLog(const std::string& id, const std::string& stream, std::uint64_t offset, std::uint64_t limit,
                      std::optional<std::uint64_t> tail) const;

 private:
  std::filesystem::path stateDir_;
  std::filesystem::path root_;  // stateDir_/sessions
};

}  // namespace bai::core
