#include "agent/agent_api.hpp"

#include "agent/agent_views.hpp"
#include "bearer_token.hpp"

namespace bai::core {
namespace {

http::Response json(int status, std::string body) { return http::Response{status, "application/json", std::move(body), {}}; }

http::Response error(int status, const std::string& type, const std::string& title, const std::string& detail) {
  return json(status, protocol::ApiError{type, title, detail}.toJson());
}


bool authorized(const http::Request& request, const std::string& token) {
  return bearerTokenMatches(request.header("authorization"), token);
}

std::uint64_t number(const http::Request& request, const std::string& name, std::uint64_t fallback) {
  auto it = request.query.find(name);
  if (it == request.query.end()) return fallback;
  try {
    std::size_t used = 0;
    const auto value = std::stoull(it->second, &used);
    if (used == it->second.size()) return value;
  } catch (const std::exception&) {
  }
  return UINT64_MAX;  // caught by the caller as invalid
}

// A page of a log and where it lies in the stream (protocol.hpp), so a reader pages on.
http::Response logPageResponse(LogPage page) {
  const std::uint64_t next = page.offset + page.text.size();
  return http::Response{200,
                        "text/plain; charset=utf-8",
                        std::move(page.text),
                        {{protocol::kLogOffsetHeader, std::to_string(page.offset)},
                         {protocol::kLogNextOffsetHeader, std::to_string(next)},
                         {protocol::kLogSizeHeader, std::to_string(page.size)}}};
}

}  // namespace

http::Response agentErrorResponse(const AgentError& e) {
  switch (e.kind) {
    case AgentErrorKind::UnknownSlot: return error(400, "unknown-slot", "Unknown resource slot", e.detail);
    case AgentErrorKind::InsufficientResource:
      return error(409, "insufficient-resource", "Not enough free resources", e.detail);
    case AgentErrorKind::FractionalResourceFragmented:
      return error(409, "fractional-resource-fragmented", "Free resources are fragmented", e.detail);
    case AgentErrorKind::InvalidResourceCombination:
      return error(400, "invalid-resource-combination", "Slots that exclude each other", e.detail);
    case AgentErrorKind::NotMultipleOfQuantum:
      return error(400, "not-multiple-of-quantum", "Amount is not a multiple of the quantum", e.detail);
    case AgentErrorKind::InvalidResourceArgument:
      return error(400, "invalid-resource-argument", "Invalid resource amount", e.detail);
    case AgentErrorKind::UnknownSession: return error(404, "unknown-session", "No such session", e.detail);
    case AgentErrorKind::InvalidLogStream: return error(400, "invalid-request", "Invalid log stream", e.detail);
    case AgentErrorKind::StateDirUnwritable:
      return error(500, "state-dir-error", "Cannot record the allocation", e.detail);
    case AgentErrorKind::SessionStartFailed:
      return error(500, "session-start-failed", "The session could not start", e.detail);
    case AgentErrorKind::DestroyFailed: return error(500, "destroy-failed", "Cannot signal the session", e.detail);
    // Not 400: another agent, with other ranges, may take the session.
    case AgentErrorKind::IdentityRefused:
      return error(403, "identity-refused", "The session's owner is not allowed on this agent", e.detail);
    // Not 503 (which the manager retries here): another agent may have the runtime.
    case AgentErrorKind::RuntimeUnavailable:
      return error(409, "runtime-unavailable", "The session's runtime is not available on this agent", e.detail);
  }
  return error(500, "internal", "Unexpected agent error", e.detail);
}

http::Handler agentApi(Agent& agent, const http::ServerCounters* httpCounters) {
  return [&agent, httpCounters](const http::Request& request) -> http::Response {
    if (!authorized(request, agent.clusterToken())) {
      return error(401, "unauthorized", "Missing or wrong cluster token", "send 'Authorization: Bearer <cluster token>'");
    }
    const std::string& path = request.path;
    const std::string& method = request.method;
    if (path == "/v1/sessions" && method == "POST") {
      auto parsed = protocol::CreateSessionRequest::fromJson(request.body);
      if (!parsed) return error(400, "invalid-request", "Invalid create-session request", parsed.error().message);
      auto created = agent.createSession(*parsed);
      if (!created) return agentErrorResponse(created.error());
      return json(created->second ? 201 : 200, created->first.toJson());
    }
    if (path == "/v1/sessions" && method == "GET") return json(200, sessionsJson(agent.sessions()));
    const std::string prefix = "/v1/sessions/";
    if (path.rfind(prefix, 0) == 0) {
      std::string id = path.substr(prefix.size());
      const bool logs = id.size() > 5 && id.compare(id.size() - 5, 5, "/logs") == 0;
      if (logs) id.resize(id.size() - 5);
      if (id.empty() || id.find('/') != std::string::npos) return error(404, "not-found", "No such resource", path);
      if (logs && method == "GET") {
        const std::uint64_t offset = number(request, "offset", 0), limit = number(request, "limit", protocol::kLogPageBytes);
        const std::uint64_t tail = number(request, "tail", 0);
        if (offset == UINT64_MAX || limit == UINT64_MAX || tail == UINT64_MAX) {
          return error(400, "invalid-request", "Invalid log range", "offset, limit and tail must be non-negative integers");
        }
        auto page = agent.sessionLogs(id, request.query.count("stream") ? request.query.at("stream") : "stdout", offset,
                                      limit, request.query.count("tail") ? std::optional<std::uint64_t>(tail) : std::nullopt);
        if (!page) return agentErrorResponse(page.error());
        return logPageResponse(std::move(*page));
      }
      if (!logs && method == "GET") {
        auto info = agent.session(id);
        return info ? json(200, info->toJson()) : agentErrorResponse(info.error());
      }
      if (!logs && method == "DELETE") {
        auto info = agent.destroySession(id);
        return info ? json(202, info->toJson()) : agentErrorResponse(info.error());
      }
      return error(405, "method-not-allowed", "Method not allowed", method + " " + path);
    }
    if (path == "/v1/alloc-map" && method == "GET") return json(200, allocationJson(agent.settings().id, agent.allocation()));
    if (path == "/v1/health" && method == "GET") return json(200, healthJson(agent.health()));
    if (path == "/v1/images/refresh" && method == "POST") return json(200, agent.refreshRuntimes().toJson());
    if (path == "/metrics" && method == "GET") {
      std::string text = metricsText(agent.metrics());
      if (httpCounters != nullptr) text += http::serverCountersText("bai_agent", *httpCounters);
      return http::Response{200, "text/plain; version=0.0.4", std::move(text), {}};
    }
    return error(404, "not-found", "No such resource", method + " " + path);
  };
}

}  // namespace bai::core
