// The agent's RPC over HTTP: routes, the bearer cluster token, JSON errors. The only place
// where an AgentError kind becomes an HTTP status and body.
#pragma once

#include "agent/agent.hpp"
#include "http_server.hpp"

namespace bai::core {

// The status and ApiError body a client gets for `error`.
http::Response agentErrorResponse(const AgentError& error);

// Every call needs "Authorization: Bearer <cluster token>". `httpCounters`, when given,
// are the serving http::Server's, shown in /metrics; they must outlive the handler.
http::Handler agentApi(Agent& agent, const http::ServerCounters* httpCounters = nullptr);

}  // namespace bai::core
