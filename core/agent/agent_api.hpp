// The agent's RPC over HTTP: routes, the bearer cluster token, JSON errors.
#pragma once

#include "agent/agent.hpp"
#include "http_server.hpp"

namespace bai::core {

// Every call needs "Authorization: Bearer <cluster token>".
http::Handler agentApi(Agent& agent);

}  // namespace bai::core
