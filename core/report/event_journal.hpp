// Session lifecycle events kept in the agent's state dir until the manager acknowledges
// them, so that an exit code survives an agent restart or a manager outage.
#pragma once

#include <bai/protocol.hpp>
#include <bai/result.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

namespace bai::core {

// Thread-safe: the agent appends while the reporter reads and acknowledges.
class EventJournal {
 public:
  // Creates `dir` when missing and loads what an earlier run left there.
  static Result<EventJournal> open(std::filesystem::path dir);

  EventJournal(EventJournal&&) noexcept;
  EventJournal& operator=(EventJournal&&) noexcept;
  ~EventJournal();

  // Gives the event the next sequence number and returns once it is on disk.
  Result<protocol::SessionEvent> append(protocol::SessionEvent eventWithoutSeq);

  // The oldest unacknowledged events, in sequence order, at most `max` of them.
  std::vector<protocol::SessionEvent> unacked(std::size_t max) const;

  // Forgets every event with seq <= `through`; an older acknowledgement is a no-op.
  Result<void> acknowledge(std::uint64_t through);

  std::uint64_t lastSeq() const;
  std::uint64_t ackedThrough() const;
  std::size_t unackedCount() const;

  // File names inside the state dir, for operators and tests.
  static constexpr const char* kJournalFile = "events.journal";
  static constexpr const char* kAckFile = "events.ack";

 private:
  struct State;
  explicit EventJournal(std::unique_ptr<State> state);

  std::unique_ptr<State> state_;
};

}  // namespace bai::core
