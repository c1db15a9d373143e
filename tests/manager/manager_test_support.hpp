// What the manager's unit tests build their inputs from: exact amounts from text and the
// full state an agent would report.
#pragma once

#include <bai/protocol.hpp>
#include <bai/slots.hpp>

#include <initializer_list>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bai::manager::test_support {

inline Quantity q(std::string_view text) {
  Result<Quantity> parsed = Quantity::parse(text);
  if (!parsed.ok()) throw std::invalid_argument(parsed.error().message);
  return *parsed;
}

inline ResourceSlot slots(std::initializer_list<std::pair<const char*, const char*>> entries) {
  ResourceSlot result;
  for (const auto& [slot, amount] : entries) result.set(SlotName::of(slot), q(amount));
  return result;
}

// An agent's full report offering `capacity` (all of it allocatable; `mem` in bytes,
// every other slot a count), running `running`.
inline protocol::AgentState nodeState(const std::string& rpcUrl, std::map<std::string, std::string> capacity,
                                      std::vector<std::string> running = {}, const std::string& group = "default") {
  protocol::AgentState state;
  state.rpcAddress = rpcUrl;
  state.scalingGroup = group;
  state.architecture = "x86_64";
  state.version = "test";
  for (const auto& [slot, amount] : capacity) {
    state.available.set(SlotName::of(slot), q(amount));
    state.largestAllocatable.set(SlotName::of(slot), q(amount));
    state.slotTypes[slot] = slot == "mem" ? SlotType::Bytes : SlotType::Count;
  }
  for (const auto& id : running) state.sessions.push_back({id, protocol::SessionState::Running});
  return state;
}

}  // namespace bai::manager::test_support
