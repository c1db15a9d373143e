// The agent's API layer alone: each AgentError kind's status and body, and the views
// rendered from data without an agent.
#include "agent/agent_api.hpp"
#include "agent/agent_views.hpp"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

namespace bai::core {
namespace {

TEST(AgentErrorResponse, EachKindHasItsStatusAndType) {
  const std::vector<std::tuple<AgentErrorKind, int, std::string>> expected = {
      {AgentErrorKind::UnknownSlot, 400, "unknown-slot"},
      {AgentErrorKind::InsufficientResource, 409, "insufficient-resource"},
      {AgentErrorKind::FractionalResourceFragmented, 409, "fractional-resource-fragmented"},
      {AgentErrorKind::InvalidResourceCombination, 400, "invalid-resource-combination"},
      {AgentErrorKind::NotMultipleOfQuantum, 400, "not-multiple-of-quantum"},
      {AgentErrorKind::InvalidResourceArgument, 400, "invalid-resource-argument"},
      {AgentErrorKind::UnknownSession, 404, "unknown-session"},
      {AgentErrorKind::InvalidLogStream, 400, "invalid-request"},
      {AgentErrorKind::StateDirUnwritable, 500, "state-dir-error"},
      {AgentErrorKind::SessionStartFailed, 500, "session-start-failed"},
      {AgentErrorKind::DestroyFailed, 500, "destroy-failed"},
      {AgentErrorKind::IdentityRefused, 403, "identity-refused"},
  };
  for (const auto& [kind, status, type] : expected) {
    const http::Response response = agentErrorResponse(AgentError{kind, "why: " + type});
    EXPECT_EQ(response.status, status) << type;
    auto body = protocol::ApiError::fromJson(response.body);
    ASSERT_TRUE(body.ok()) << response.body;
    EXPECT_EQ(body->type, type);
    EXPECT_EQ(body->detail, "why: " + type);
  }
}

AllocationFigures oneDeviceHeldBy(const std::string& session) {
  AllocationFigures figures;
  figures.maps.push_back({"acme.device", SlotType::Count, false, AllocationStrategy::Evenly, Quantity(0), Quantity(0),
                          {{"a0", 0, Quantity(1), Quantity(1), true}}});
  figures.holdings[session]["acme.device"]["a0"] = Quantity(1);
  return figures;
}

TEST(AgentViews, TheAllocMapNamesWhoHoldsEachDevice) {
  auto json = nlohmann::json::parse(allocationJson("a1", oneDeviceHeldBy("s1")));
  EXPECT_EQ(json["agent_id"], "a1");
  const auto& map = json["maps"][0];
  EXPECT_EQ(map["slot"], "acme.device");
  EXPECT_EQ(map["kind"], "discrete");
  EXPECT_EQ(map["devices"][0]["sessions"], (nlohmann::json{{"s1", "1"}}));
}

TEST(AgentViews, MetricsShowReportingOnlyOnceItRuns) {
  AgentMetrics metrics;
  protocol::SessionInfo running;
  running.state = protocol::SessionState::Running;
  metrics.sessions.push_back(running);
  metrics.allocation = oneDeviceHeldBy("s1");
  std::string text = metricsText(metrics);
  EXPECT_NE(text.find("bai_agent_sessions{state=\"running\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("bai_agent_device_allocated{slot=\"acme.device\",device=\"a0\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("bai_agent_session_allocation{session=\"s1\",slot=\"acme.device\"} 1\n"), std::string::npos);
  EXPECT_EQ(text.find("bai_agent_heartbeats_total"), std::string::npos);
  metrics.reporting = ReporterCounters{3, 1, 0, 0, std::nullopt, true};
  text = metricsText(metrics);
  EXPECT_NE(text.find("bai_agent_heartbeats_total{outcome=\"sent\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("bai_agent_manager_connected 1\n"), std::string::npos) << text;
}

TEST(AgentViews, HealthListsDevicesAndPluginsOutOfService) {
  AgentHealth health{"a1", "fake", false, {{"good", "acme", {{"acme", "a0", "unhealthy", "too hot"}}}},
                     {{"/p/bad.so", "bad", "wrong ABI"}}, {"hung"}, {"leaving"},
                     {{"process", true, ""}, {"container", false, "engine at /run/docker.sock is unreachable"}}};
  auto json = nlohmann::json::parse(healthJson(health));
  EXPECT_EQ(json["plugins"][0]["devices"][0], (nlohmann::json{{"id", "a0"}, {"health", "unhealthy"}, {"reason", "too hot"}}));
  EXPECT_EQ(json["skipped_plugins"][0]["reason"], "wrong ABI");
  EXPECT_EQ(json["withdrawn_plugins"], nlohmann::json{"hung"});
  EXPECT_EQ(json["draining_plugins"], nlohmann::json{"leaving"});
  EXPECT_EQ(json["limits_enforced"], false);
  EXPECT_EQ(json["runtimes"][0], (nlohmann::json{{"kind", "process"}, {"available", true}}));
  EXPECT_EQ(json["runtimes"][1]["reason"], "engine at /run/docker.sock is unreachable") << "why it is unavailable";
}

}  // namespace
}  // namespace bai::core
