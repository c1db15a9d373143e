// What the manager's unit tests build their inputs from: exact amounts from text and the
// full state an agent would report.
#pragma once

#include <bai/protocol.hpp>
#include <bai/request_signing.hpp>
#include <bai/slots.hpp>

#include "http_client.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
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

// One signed call to a manager's API on loopback `port`: the status (0 when nothing answered)
// and the body as JSON (discarded when it is not JSON).
struct SignedReply {
  int status = 0;
  nlohmann::json body;
};
inline SignedReply signedCall(std::uint16_t port, const auth::SigningKey& key, const std::string& method,
                              const std::string& target, const std::string& body = "") {
  http::ClientRequest request;
  request.method = method;
  request.url = "http://127.0.0.1:" + std::to_string(port) + target;
  request.headers = auth::signRequest(key, method, target, body, std::chrono::system_clock::now());
  if (!body.empty()) request.headers.emplace("Content-Type", "application/json");
  request.body = body;
  auto response = http::send(request);
  if (!response) return {0, response.error().message};
  return {response->status, nlohmann::json::parse(response->body, nullptr, false)};
}

}  // namespace bai::manager::test_support
