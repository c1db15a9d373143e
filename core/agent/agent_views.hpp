// The agent's data as its RPC shows it: JSON documents and the Prometheus metrics text.
// Part of the API layer; pure functions of what the agent's parts return.
#pragma once

#include "agent/agent_figures.hpp"

#include <bai/protocol.hpp>

#include <string>
#include <vector>

namespace bai::core {

std::string sessionsJson(const std::vector<protocol::SessionInfo>& sessions);
std::string allocationJson(const std::string& agentId, const AllocationFigures& allocation);
std::string healthJson(const AgentHealth& health);
std::string metricsText(const AgentMetrics& metrics);

}  // namespace bai::core
