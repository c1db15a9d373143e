// The manager API's JSON and text: what it reads from request bodies and writes for
// sessions, agents, keypairs and /metrics. Part of the API layer: the domain returns
// records and figures, never JSON.
#pragma once

#include "manager.hpp"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bai::manager {

// POST /v1/sessions: {"name", "command", "env", "resources", "scaling_group", "image",
// "stdin", "tty", "service_ports"}; unknown fields are refused, each error names its field.
Outcome<NewSession> parseNewSession(const std::string& body);

// last_activity_at_ms: when its terminal, exec or service traffic last passed through
// this manager (null: none since it started).
std::string sessionToJson(const SessionRecord& session, const std::string& pendingReason = "",
                          std::optional<std::int64_t> lastActivityMillis = std::nullopt);
std::string agentToJson(const AgentSummary& agent, const std::map<std::string, SlotType>& types);
// [{kind, available, reason?}], as agents report them.
nlohmann::json runtimesJson(const std::vector<AgentRuntimeRecord>& runtimes);
// {agent, status, scaling_group, runtimes, images: [{name, id, size}]}: GET /v1/admin/images.
nlohmann::json imagesJson(const AgentRecord& agent);
nlohmann::json keypairToJson(const KeypairRecord& key);  // never the secret

// The Prometheus text of /metrics: the state's gauges, then the counters.
std::string metricsText(const ClusterFigures& figures, const Metrics& metrics);

}  // namespace bai::manager
