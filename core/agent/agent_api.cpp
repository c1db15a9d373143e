#include "agent/agent_api.hpp"

#include "agent/agent_views.hpp"
#include "bearer_token.hpp"
#include "parse_json.hpp"

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

// "/v1/sessions/{id}/attach", ".../exec", ".../services/{name}/connect": the session and
// what of it; nullopt for any other path.
std::optional<std::pair<std::string, StreamTarget>> streamRoute(const std::string& path) {
  const std::string prefix = "/v1/sessions/";
  if (path.rfind(prefix, 0) != 0) return std::nullopt;
  std::vector<std::string> parts;
  for (std::size_t start = prefix.size();;) {
    const std::size_t slash = path.find('/', start);
    parts.push_back(path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  StreamTarget target;
  if (parts.size() == 2 && parts[1] == "attach") {
    target.kind = StreamTarget::Kind::Console;
  } else if (parts.size() == 2 && parts[1] == "exec") {
    target.kind = StreamTarget::Kind::Exec;
  } else if (parts.size() == 4 && parts[1] == "services" && parts[3] == "connect") {
    target.kind = StreamTarget::Kind::Service;
    target.service = parts[2];
  } else {
    return std::nullopt;
  }
  if (parts[0].empty()) return std::nullopt;
  return std::pair{parts[0], target};
}

// rows and cols of the query, when both are there; an error names what is wrong.
Result<std::optional<stream::TerminalSize>> terminalSize(const http::Request& request) {
  if (!request.query.count("rows") && !request.query.count("cols")) return std::optional<stream::TerminalSize>{};
  const std::uint64_t rows = number(request, "rows", 0), cols = number(request, "cols", 0);
  if (rows == 0 || cols == 0 || rows > 65535 || cols > 65535) {
    return fail(ErrorCode::InvalidArgument, "rows and cols must both be 1 to 65535");
  }
  return std::optional(stream::TerminalSize{static_cast<std::uint16_t>(rows), static_cast<std::uint16_t>(cols)});
}

bool flag(const http::Request& request, const std::string& name) {
  auto it = request.query.find(name);
  return it != request.query.end() && (it->second == "1" || it->second == "true");
}

// The exec's command: a JSON array of strings in `command`.
Result<std::vector<std::string>> execCommand(const http::Request& request) {
  auto it = request.query.find("command");
  if (it == request.query.end()) return fail(ErrorCode::InvalidArgument, "command: missing (a JSON array of strings)");
  auto parsed = parseJson(it->second);
  if (!parsed || !parsed->is_array() || parsed->empty() || parsed->size() > 4096) {
    return fail(ErrorCode::InvalidArgument, "command: expected a JSON array of 1 to 4096 strings");
  }
  std::vector<std::string> command;
  for (const auto& arg : *parsed) {
    if (!arg.is_string()) return fail(ErrorCode::InvalidArgument, "command: expected a JSON array of strings");
    command.push_back(arg.get<std::string>());
  }
  return command;
}

http::Response openStream(Agent& agent, const http::Request& request, const std::string& id, StreamTarget target) {
  if (request.method != "GET") return error(405, "method-not-allowed", "Method not allowed", request.method + " " + request.path);
  if (!ws::isUpgradeRequest(request.headers)) {
    return error(426, "upgrade-required", "Upgrade required", request.path + " takes a WebSocket upgrade request");
  }
  auto size = terminalSize(request);
  if (!size) return error(400, "invalid-request", "Invalid terminal size", size.error().message);
  target.size = *size;
  if (target.kind == StreamTarget::Kind::Exec) {
    auto command = execCommand(request);
    if (!command) return error(400, "invalid-request", "Invalid exec request", command.error().message);
    target.exec.command = std::move(*command);
    target.exec.tty = flag(request, "tty");
    target.exec.openStdin = flag(request, "stdin") || target.exec.tty;
    target.exec.size = *size;
  }
  auto opened = agent.openStream(id, target);
  if (!opened) return agentErrorResponse(opened.error());
  const InteractiveSettings& limits = agent.settings().interactive;
  ws::Options options;
  options.maxMessageBytes = limits.maxFrameBytes;
  options.idleTimeout = limits.idleTimeout;
  // std::function needs a copyable callable: the opening rides in a shared_ptr.
  auto opening = std::make_shared<StreamOpening>(std::move(*opened));
  return http::Response::acceptUpgrade(
      [&agent, opening](std::shared_ptr<ws::WebSocket> socket) { agent.bridgeStream(std::move(*opening), std::move(socket)); },
      options);
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
    case AgentErrorKind::SessionNotRunning: return error(409, "session-not-running", "The session is not running", e.detail);
    case AgentErrorKind::NotInteractive: return error(409, "not-interactive", "The session has no console", e.detail);
    case AgentErrorKind::NoSuchService: return error(404, "no-such-service", "No such service", e.detail);
    case AgentErrorKind::ServiceUnreachable: return error(502, "service-unreachable", "The service does not answer", e.detail);
    case AgentErrorKind::TooManyStreams:
      return error(429, "too-many-connections", "Too many connections to this session", e.detail);
    case AgentErrorKind::InvalidStream: return error(400, "invalid-request", "Invalid stream request", e.detail);
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
    if (auto route = streamRoute(path)) return openStream(agent, request, route->first, std::move(route->second));
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
