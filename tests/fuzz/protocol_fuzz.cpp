// Every document of the agent–manager protocol and the agent's RPC (bai/protocol.hpp),
// each tried on the same input: what a parser accepts serialises to JSON that parses
// back and serialises to the same text.
#include "fuzz_support.hpp"

#include <bai/protocol.hpp>

namespace {

namespace protocol = bai::protocol;

template <class Document>
void requireRoundTrip(std::string_view text, const char* property) {
  const auto parsed = Document::fromJson(text);
  if (!parsed) return;
  const std::string json = parsed->toJson();
  const auto again = Document::fromJson(json);
  bai::fuzz::require(again.ok() && again->toJson() == json, property, json);
}

void requireAllocationRoundTrip(std::string_view text) {
  const auto parsed = protocol::allocationFromJson(text);
  if (!parsed) return;
  const std::string json = protocol::allocationToJson(*parsed);
  const auto again = protocol::allocationFromJson(json);
  bai::fuzz::require(again.ok() && *again == *parsed, "allocationFromJson(allocationToJson(a)) == a", json);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = bai::fuzz::textOf(data, size);
  requireRoundTrip<protocol::Heartbeat>(text, "Heartbeat round trip");
  requireRoundTrip<protocol::HeartbeatReply>(text, "HeartbeatReply round trip");
  requireRoundTrip<protocol::EventBatch>(text, "EventBatch round trip");
  requireRoundTrip<protocol::EventAck>(text, "EventAck round trip");
  requireRoundTrip<protocol::CreateSessionRequest>(text, "CreateSessionRequest round trip");
  requireRoundTrip<protocol::SessionInfo>(text, "SessionInfo round trip");
  requireRoundTrip<protocol::ApiError>(text, "ApiError round trip");
  requireRoundTrip<protocol::RuntimeInventory>(text, "RuntimeInventory round trip");
  requireAllocationRoundTrip(text);
  if (const auto state = protocol::parseSessionState(text)) {
    bai::fuzz::require(protocol::sessionStateName(*state) == text, "a session state parses from its name only", text);
  }
  return 0;
}
