#include "manager_api.hpp"

#include "admin_records.hpp"
#include "api_views.hpp"
#include "bearer_token.hpp"
#include "parse_json.hpp"
#include "store_nonce_journal.hpp"
#include "vfolder_api.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <stdexcept>

namespace bai::manager {
namespace {

using http::Request;
using http::Responder;
using http::Response;

Response json(int status, std::string body) { return Response{status, "application/json", std::move(body), {}}; }

Response error(int status, std::string type, std::string title, std::string detail) {
  return json(status, protocol::ApiError{std::move(type), std::move(title), std::move(detail)}.toJson());
}

Response error(const DomainError& failure) { return json(httpStatusOf(failure.kind), problemJson(failure)); }

// uid or gid of a keypair request: absent is 0 (the manager's to give); else a whole
// number from 1 to kMaxSessionId, never a string, a fraction or a boolean.
Outcome<std::uint32_t> sessionIdField(const nlohmann::json& doc, const std::string& field) {
  if (!doc.contains(field)) return std::uint32_t{0};
  const nlohmann::json& value = doc[field];
  // The parser keeps non-negative integers unsigned; a float or a boolean is no id.
  const bool inRange = value.is_number_unsigned()  ? value.get<std::uint64_t>() >= 1 && value.get<std::uint64_t>() <= kMaxSessionId
                       : value.is_number_integer() ? value.get<std::int64_t>() >= 1 && value.get<std::int64_t>() <= kMaxSessionId
                                                   : false;
  if (!inRange) {
    const std::string range = "from 1 to " + std::to_string(kMaxSessionId);
    return refuse(ErrorKind::InvalidRequest, field + " must be a whole number " + range + ", not " + value.dump(), field);
  }
  return static_cast<std::uint32_t>(value.get<std::uint64_t>());
}

Outcome<KeypairIdentity> identityFields(const nlohmann::json& doc) {
  auto uid = sessionIdField(doc, "uid");
  if (!uid) return Failure{uid.error()};
  auto gid = sessionIdField(doc, "gid");
  if (!gid) return Failure{gid.error()};
  return KeypairIdentity{*uid, *gid};
}

Response notFound(const Request& request) { return error(404, "not-found", "No such resource", request.method + " " + request.path); }

bool bearerMatches(const Request& request, const std::string& token) {
  return bearerTokenMatches(request.header("authorization"), token);
}

// "/v1/sessions/abc/logs" -> {"v1", "sessions", "abc", "logs"}, each URL-decoded.
std::vector<std::string> segmentsOf(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    out.push_back(http::urlDecode(path.substr(start, end - start)));
    start = end + 1;
  }
  return out;
}

template <class Record>
Response reply(int status, const Outcome<Record>& result, nlohmann::json (*toJson)(const Record&)) {
  return result ? json(status, toJson(*result).dump()) : error(result.error());
}

template <class Record>
Response listReply(const std::vector<Record>& records, nlohmann::json (*toJson)(const Record&)) {
  nlohmann::json out = nlohmann::json::array();
  for (const Record& record : records) out.push_back(toJson(record));
  return json(200, out.dump());
}

Result<nlohmann::json, Response> objectBody(const Request& request) {
  auto doc = parseJson(request.body);
  if (!doc) return Failure{error(400, "invalid-request", "Invalid request body", doc.error().message)};
  if (!doc->is_object()) {
    return Failure{error(400, "invalid-request", "Invalid request body", "the body is not a JSON object")};
  }
  return std::move(*doc);
}

// An agent's answer as it gave it (`defaultType` when it named none), with the headers
// named in `keep`, or the error. The body is moved, never copied: it may be a log page.
Response passThrough(Outcome<AgentReply> reply, const char* defaultType, std::initializer_list<const char*> keep = {}) {
  if (!reply) return error(reply.error());
  Response response{reply->status, reply->contentType.empty() ? defaultType : reply->contentType, std::move(reply->body), {}};
  for (const char* name : keep) {
    std::string lowerName = name;
    for (char& c : lowerName) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (auto it = reply->headers.find(lowerName); it != reply->headers.end()) response.headers[name] = it->second;
  }
  return response;
}

// ?stream=&offset=&limit=&tail= of a log read; numbers are non-negative integers.
Result<LogRange, Response> logRangeOf(const Request& request) {
  LogRange range;
  for (const auto& [name, value] : request.query) {
    if (name == "stream") {
      range.stream = value;
      continue;
    }
    if (name != "offset" && name != "limit" && name != "tail") {
      return Failure{error(400, "invalid-request", "Invalid log range", "unknown parameter '" + name + "' (stream, offset, limit, tail)")};
    }
    const bool digits = !value.empty() && value.size() <= 19 && value.find_first_not_of("0123456789") == std::string::npos;
    if (!digits) {
      return Failure{error(400, "invalid-request", "Invalid log range", name + " must be a non-negative integer, not '" + value + "'")};
    }
    const std::uint64_t number = std::stoull(value);
    if (name == "offset") range.offset = number;
    if (name == "limit") range.limit = number;
    if (name == "tail") range.tail = number;
  }
  return range;
}

enum class Role { Public, Agent, Metrics, User, Admin };

// What a handler gets: the request, the path's {parameters} in order, the caller.
struct Call {
  const Request& request;
  std::vector<std::string> params;
  Caller caller;
};
using Handler = std::function<void(Call&, Responder)>;

struct Route {
  const char* method;
  const char* pattern;  // "/v1/sessions/{}/logs": {} is one non-empty segment
  Role role;
  Handler handler;
  std::vector<std::string> parts = {};  // the pattern's segments, split once when the table is made
};

// The path's parameters when `route`'s pattern matches `segments`.
std::optional<std::vector<std::string>> match(const Route& route, const std::vector<std::string>& segments) {
  const auto& parts = route.parts;
  if (parts.size() != segments.size()) return std::nullopt;
  std::vector<std::string> params;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "{}") {
      if (segments[i].empty()) return std::nullopt;
      params.push_back(segments[i]);
    } else if (parts[i] != segments[i]) {
      return std::nullopt;
    }
  }
  return params;
}


class Api {
 public:
  Api(Manager& manager, ApiOptions options)
      : manager_(manager),
        options_(std::move(options)),
        nonceJournal_(manager.store()),
        verifier_(
            [&manager](const std::string& accessKey) -> std::optional<KeyInfo> {
              auto keypair = manager.admin().keypair(accessKey);
              if (!keypair) return std::nullopt;
              return KeyInfo{keypair->secretKey, keypair->admin, keypair->active};
            },
            RequestVerifier::kDefaultWindow, std::chrono::system_clock::now, NonceCache::kDefaultCapacity,
            &nonceJournal_),
        routes_(routes()) {
    for (Route& route : routes_) route.parts = segmentsOf(route.pattern);
  }

  Result<void> restoreNonces() { return verifier_.restoreNonces(); }
  void handle(Request request, Responder respond);

 private:
  std::vector<Route> routes();
  std::vector<Route> adminRoutes();
  Result<Caller, Response> authenticate(const Request& request);
  void scrape(const Route& route, Call& call, Responder respond);
  void agentRequest(const Request& request, const std::vector<std::string>& segments, Responder respond);

  void heartbeat(Call& call, Responder respond, bool registration);
  Response createSession(Call& call);
  Response listSessions(Call& call);
  void getSession(Call& call, Responder respond);
  Response createKeypair(Call& call);
  Response patchKeypair(Call& call);
  Response setKeypairIdentity(Call& call);
  // A terminal, an exec or a service tunnel: relayed to the agent once it accepted.
  void openStream(Call& call, StreamKind kind, Responder respond);
  std::string sessionJson(const SessionRecord& session) {
    return sessionToJson(session, session.status == SessionStatus::Pending ? manager_.pendingReason(session.id) : "",
                         manager_.interactive().lastActivityMillis(session.id));
  }

  Manager& manager_;
  ApiOptions options_;
  StoreNonceJournal nonceJournal_;
  RequestVerifier verifier_;
  std::vector<Route> routes_;
};

void Api::handle(Request request, Responder respond) {
  const auto segments = segmentsOf(request.path);
  // Agents carry the cluster token; their paths are theirs alone.
  if (request.path.rfind("/v1/agents/", 0) == 0 && request.header("authorization").rfind("Bearer ", 0) == 0) {
    return agentRequest(request, segments, std::move(respond));
  }
  const Route* found = nullptr;
  bool pathKnown = false, pathForAdmins = true;  // some route has this path; all of them admins'
  Call call{request, {}, {}};
  for (const Route& route : routes_) {
    if (route.role == Role::Agent) continue;
    auto params = match(route, segments);
    if (!params) continue;
    pathKnown = true;
    pathForAdmins = pathForAdmins && (route.role == Role::Admin || route.role == Role::Metrics);
    if (route.method != request.method) continue;
    found = &route;
    call.params = std::move(*params);
    break;
  }
  if (found != nullptr && found->role == Role::Public) return found->handler(call, std::move(respond));
  if (found != nullptr && found->role == Role::Metrics && request.header("authorization").rfind("Bearer ", 0) == 0) {
    return scrape(*found, call, std::move(respond));
  }
  auto caller = authenticate(request);
  if (!caller) return respond(caller.error());
  call.caller = *caller;
  const bool adminOnly = found == nullptr ? pathForAdmins : found->role == Role::Admin || found->role == Role::Metrics;
  if (pathKnown && adminOnly && !call.caller.admin) {
    return respond(error(403, "forbidden", "Admins only", request.method + " " + request.path + " needs an admin keypair"));
  }
  if (found == nullptr) {
    return respond(pathKnown ? error(405, "method-not-allowed", "Method not allowed", request.method + " " + request.path)
                             : notFound(request));
  }
  found->handler(call, std::move(respond));
}

Result<Caller, Response> Api::authenticate(const Request& request) {
  auto principal = verifier_.verify(request.method, request.target, request.headers, request.body);
  if (principal) return Caller{principal->accessKey, principal->admin};
  manager_.metrics().authFailures.fetch_add(1, std::memory_order_relaxed);
  const std::string& type = principal.error().type;
  const int status = type == "nonce-cache-full" || type == "nonce-not-saved" ? 503 : 401;
  Response response = error(status, principal.error().type, "Unauthorized", principal.error().detail);
  response.headers["WWW-Authenticate"] = "BAI-HMAC-SHA256";
  return Failure<Response>{response};
}

// A scraper's bearer token opens /metrics and nothing else; the agents' token never does,
// so that Prometheus holds no credential an agent could be impersonated with.
void Api::scrape(const Route& route, Call& call, Responder respond) {
  if (!options_.metricsToken.empty() && bearerMatches(call.request, options_.metricsToken)) {
    return route.handler(call, std::move(respond));
  }
  manager_.metrics().authFailures.fetch_add(1, std::memory_order_relaxed);
  respond(error(401, "bad-metrics-token", "Unauthorized",
                options_.metricsToken.empty()
                    ? "no metrics token is configured ([metrics] token-file); sign the request with an admin keypair"
                    : "the bearer token is not the metrics token ([metrics] token-file)"));
}

void Api::agentRequest(const Request& request, const std::vector<std::string>& segments, Responder respond) {
  if (!bearerMatches(request, options_.clusterToken)) {
    manager_.metrics().authFailures.fetch_add(1, std::memory_order_relaxed);
    return respond(error(401, "bad-cluster-token", "Unauthorized", "the bearer token is not this cluster's"));
  }
  for (const Route& route : routes_) {
    if (route.role != Role::Agent || route.method != request.method) continue;
    if (auto params = match(route, segments)) {
      Call call{request, std::move(*params), {}};
      return route.handler(call, std::move(respond));
    }
  }
  respond(notFound(request));
}

std::vector<Route> Api::routes() {
  auto sync = [](Response (Api::*method)(Call&), Api* api) {
    return [api, method](Call& call, Responder respond) { respond((api->*method)(call)); };
  };
  std::vector<Route> table = {
      {"GET", "/healthz", Role::Public,
       [](Call&, Responder respond) {
         respond(json(200, nlohmann::json{{"status", "ok"}, {"version", BAI_VERSION}}.dump()));
       }},
      {"POST", "/v1/agents/{}/heartbeat", Role::Agent, [this](Call& c, Responder r) { heartbeat(c, std::move(r), false); }},
      {"POST", "/v1/agents/{}/register", Role::Agent, [this](Call& c, Responder r) { heartbeat(c, std::move(r), true); }},
      {"POST", "/v1/agents/{}/events", Role::Agent,
       [this](Call& call, Responder respond) {
         auto batch = protocol::EventBatch::fromJson(call.request.body);
         if (!batch) return respond(error(400, "invalid-request", "Invalid event batch", batch.error().message));
         auto ack = manager_.events(call.params[0], *batch);
         respond(ack ? json(200, ack->toJson()) : error(ack.error()));
       }},
      {"GET", "/metrics", Role::Metrics,
       [this](Call&, Responder respond) {
         std::string text = metricsText(manager_.figures(), manager_.metrics());
         if (options_.httpCounters) text += http::serverCountersText("bai_manager", *options_.httpCounters);
         respond(Response{200, "text/plain; version=0.0.4", std::move(text), {}});
       }},
      {"POST", "/v1/sessions", Role::User, sync(&Api::createSession, this)},
      {"GET", "/v1/sessions", Role::User, sync(&Api::listSessions, this)},
      {"GET", "/v1/sessions/{}", Role::User, [this](Call& c, Responder r) { getSession(c, std::move(r)); }},
      {"DELETE", "/v1/sessions/{}", Role::User,
       [this](Call& call, Responder respond) {
         auto destroyed = manager_.sessions().destroy(call.caller, call.params[0]);
         respond(destroyed ? json(200, sessionJson(*destroyed)) : error(destroyed.error()));
       }},
      {"GET", "/v1/sessions/{}/logs", Role::User,
       [this](Call& call, Responder respond) {
         auto range = logRangeOf(call.request);
         if (!range) return respond(range.error());
         manager_.sessions().logs(call.caller, call.params[0], *range, [respond](Outcome<AgentReply> reply) {
           respond(passThrough(std::move(reply), "text/plain",
                               {protocol::kLogOffsetHeader, protocol::kLogNextOffsetHeader, protocol::kLogSizeHeader}));
         });
       }},
      {"GET", "/v1/sessions/{}/attach", Role::User,
       [this](Call& c, Responder r) { openStream(c, StreamKind::Attach, std::move(r)); }},
      {"GET", "/v1/sessions/{}/exec", Role::User, [this](Call& c, Responder r) { openStream(c, StreamKind::Exec, std::move(r)); }},
      {"GET", "/v1/sessions/{}/services/{}/connect", Role::User,
       [this](Call& c, Responder r) { openStream(c, StreamKind::Service, std::move(r)); }},
      {"GET", "/v1/resource-slots", Role::User,
       [this](Call&, Responder respond) {
         nlohmann::json out = nlohmann::json::object();
         for (const auto& [slot, type] : manager_.slotTypes()) out[slot] = slotTypeName(type);
         respond(json(200, out.dump()));
       }},
      {"POST", "/v1/keypairs", Role::Admin, sync(&Api::createKeypair, this)},
      {"PATCH", "/v1/keypairs/{}", Role::Admin, sync(&Api::patchKeypair, this)},
      {"PUT", "/v1/keypairs/{}/identity", Role::Admin, sync(&Api::setKeypairIdentity, this)},
  };
  for (auto& route : adminRoutes()) table.push_back(std::move(route));
  for (auto& route : vfolderRoutes(manager_.vfolders())) {
    table.push_back({route.method, route.pattern, Role::User, [handler = std::move(route.handler)](Call& call, Responder respond) {
                       respond(handler(call.request, call.params, call.caller));
                     }});
  }
  return table;
}

// Agents, keypair lists, scaling groups and resource policies.
std::vector<Route> Api::adminRoutes() {
  AdminService& admin = manager_.admin();
  auto withBody = [](auto apply) {
    return [apply](Call& call, Responder respond) {
      auto body = objectBody(call.request);
      respond(body ? apply(call, *body) : body.error());
    };
  };
  return {
      {"GET", "/v1/agents", Role::Admin,
       [this](Call&, Responder respond) {
         const auto types = manager_.slotTypes();
         std::string out = "[";
         for (const auto& agent : manager_.agents()) out += (out.size() > 1 ? "," : "") + agentToJson(agent, types);
         respond(json(200, out + "]"));
       }},
      {"GET", "/v1/agents/{}", Role::Admin,
       [this](Call& call, Responder respond) {
         for (const auto& agent : manager_.agents()) {
           if (agent.record.id == call.params[0]) return respond(json(200, agentToJson(agent, manager_.slotTypes())));
         }
         respond(error(DomainError{ErrorKind::UnknownAgent, "no agent '" + call.params[0] + "'"}));
       }},
      {"GET", "/v1/agents/{}/alloc-map", Role::Admin,
       [this](Call& call, Responder respond) {
         manager_.agentRpcGet(call.params[0], "/v1/alloc-map",
                              [respond](Outcome<AgentReply> reply) { respond(passThrough(std::move(reply), "application/json")); });
       }},
      {"POST", "/v1/agents/{}/images/refresh", Role::Admin,
       [this](Call& call, Responder respond) {
         manager_.refreshAgentImages(call.params[0], [respond](Outcome<AgentRecord> agent) {
           respond(agent ? json(200, imagesJson(*agent).dump()) : error(agent.error()));
         });
       }},
      {"GET", "/v1/images", Role::Admin,
       [this](Call& call, Responder respond) {
         const auto only = call.request.query.find("agent");
         nlohmann::json out = nlohmann::json::array();
         for (const auto& agent : manager_.agents()) {
           if (only == call.request.query.end() || only->second == agent.record.id) out.push_back(imagesJson(agent.record));
         }
         if (only != call.request.query.end() && out.empty()) {
           return respond(error(DomainError{ErrorKind::UnknownAgent, "no agent '" + only->second + "'"}));
         }
         respond(json(200, out.dump()));
       }},
      {"GET", "/v1/keypairs", Role::Admin, [&admin](Call&, Responder r) { r(listReply(admin.keypairs(), keypairToJson)); }},
      {"GET", "/v1/keypairs/{}", Role::Admin,
       [&admin](Call& call, Responder respond) {
         if (auto keypair = admin.keypair(call.params[0])) return respond(json(200, keypairToJson(*keypair).dump()));
         respond(error(DomainError{ErrorKind::UnknownKeypair, "no keypair '" + call.params[0] + "'"}));
       }},
      {"GET", "/v1/scaling-groups", Role::Admin,
       [&admin](Call&, Responder r) { r(listReply(admin.scalingGroups(), scalingGroupToJson)); }},
      {"POST", "/v1/scaling-groups", Role::Admin, withBody([&admin](Call&, const nlohmann::json& body) {
         return reply(201, admin.createScalingGroup(scalingGroupCreate(body)), scalingGroupToJson);
       })},
      {"GET", "/v1/scaling-groups/{}", Role::Admin,
       [&admin](Call& call, Responder respond) {
         if (auto group = admin.scalingGroup(call.params[0])) return respond(json(200, scalingGroupToJson(*group).dump()));
         respond(error(DomainError{ErrorKind::UnknownScalingGroup, "no scaling group '" + call.params[0] + "'"}));
       }},
      {"PATCH", "/v1/scaling-groups/{}", Role::Admin, withBody([&admin](Call& call, const nlohmann::json& body) {
         return reply(200, admin.patchScalingGroup(call.params[0], scalingGroupPatch(body)), scalingGroupToJson);
       })},
      {"GET", "/v1/resource-policies", Role::Admin,
       [&admin](Call&, Responder r) { r(listReply(admin.resourcePolicies(), resourcePolicyToJson)); }},
      {"POST", "/v1/resource-policies", Role::Admin, withBody([&admin](Call&, const nlohmann::json& body) {
         return reply(201, admin.createResourcePolicy(resourcePolicyCreate(body)), resourcePolicyToJson);
       })},
      {"GET", "/v1/resource-policies/{}", Role::Admin,
       [&admin](Call& call, Responder respond) {
         if (auto policy = admin.resourcePolicy(call.params[0])) return respond(json(200, resourcePolicyToJson(*policy).dump()));
         respond(error(DomainError{ErrorKind::UnknownResourcePolicy, "no resource policy '" + call.params[0] + "'"}));
       }},
      {"PATCH", "/v1/resource-policies/{}", Role::Admin, withBody([&admin](Call& call, const nlohmann::json& body) {
         return reply(200, admin.patchResourcePolicy(call.params[0], resourcePolicyPatch(body)), resourcePolicyToJson);
       })},
  };
}

void Api::heartbeat(Call& call, Responder respond, bool registration) {
  auto heartbeat = protocol::Heartbeat::fromJson(call.request.body);
  if (!heartbeat) return respond(error(400, "invalid-request", "Invalid heartbeat", heartbeat.error().message));
  if (registration && !heartbeat->state) {
    return respond(error(400, "invalid-request", "Invalid registration", "a registration carries the agent's state"));
  }
  // Answered later when the report waits for the group commit of agents' rows.
  manager_.heartbeat(call.params[0], *heartbeat, [respond = std::move(respond)](auto reply) {
    respond(reply ? json(200, reply->toJson()) : error(reply.error()));
  });
}

Response Api::createSession(Call& call) {
  auto parsed = parseNewSession(call.request.body);
  if (!parsed) return error(parsed.error());
  parsed->idempotencyKey = call.request.header("idempotency-key");
  auto created = manager_.createSession(call.caller, *parsed);
  return created ? json(201, sessionJson(*created)) : error(created.error());
}

Response Api::listSessions(Call& call) {
  std::optional<SessionStatus> status;
  if (auto it = call.request.query.find("status"); it != call.request.query.end()) {
    auto parsed = parseSessionStatus(it->second);
    if (!parsed) return error(400, "invalid-request", "Invalid status filter", parsed.error().message);
    status = *parsed;
  }
  auto sessions = manager_.sessions().list(call.caller, status);
  if (!sessions) return error(sessions.error());
  std::string out = "[";
  for (const auto& session : *sessions) out += (out.size() > 1 ? "," : "") + sessionJson(session);
  return json(200, out + "]");
}

void Api::getSession(Call& call, Responder respond) {
  std::chrono::milliseconds wait{0};
  if (auto it = call.request.query.find("wait"); it != call.request.query.end()) {
    auto seconds = Quantity::parse(it->second);
    if (!seconds || seconds->isNegative() || !seconds->isFinite() || *seconds > Quantity(86400)) {
      return respond(error(400, "invalid-request", "Invalid wait", "wait must be seconds from 0 to 86400, not '" + it->second + "'"));
    }
    wait = std::chrono::milliseconds(static_cast<std::int64_t>(seconds->raw() / 1000));
  }
  manager_.sessions().wait(call.caller, call.params[0], wait, [this, respond](Outcome<SessionRecord> session) {
    respond(session ? json(200, sessionJson(*session)) : error(session.error()));
  });
}

void Api::openStream(Call& call, StreamKind kind, Responder respond) {
  const Request& request = call.request;
  if (!ws::isUpgradeRequest(request.headers)) {
    return respond(error(426, "upgrade-required", "Upgrade required",
                         request.method + " " + request.path + " is a WebSocket: send Connection: Upgrade, Upgrade: websocket"));
  }
  const std::size_t question = request.target.find('?');
  StreamTarget target{call.params[0], kind, kind == StreamKind::Service ? call.params[1] : "",
                      question == std::string::npos ? "" : request.target.substr(question + 1)};
  InteractiveStreams& streams = manager_.interactive();
  streams.open(call.caller, target, [&streams, respond](Outcome<StreamOpening> opening) {
    if (!opening) return respond(error(opening.error()));
    if (opening->refusal) return respond(passThrough(std::move(*opening->refusal), "application/json"));
    // Answered 101 only now that the agent's side is open; the client's side joins it.
    respond(Response::acceptUpgrade(
        [&streams, stream = opening->stream](std::shared_ptr<ws::WebSocket> client) { streams.relay(stream, std::move(client)); },
        streams.socketOptions()));
  });
}

Response Api::createKeypair(Call& call) {
  const auto& body = call.request.body;
  auto parsed = body.empty() ? Result<nlohmann::json>(nlohmann::json::object()) : parseJson(body);
  const nlohmann::json doc = parsed ? std::move(*parsed) : nlohmann::json();
  if (!doc.is_object() || (doc.contains("admin") && !doc["admin"].is_boolean()) ||
      (doc.contains("resource_policy") && !doc["resource_policy"].is_string())) {
    return error(400, "invalid-request", "Invalid keypair request",
                 "expected {\"admin\": true|false, \"resource_policy\": \"name\", \"uid\": N, \"gid\": N}");
  }
  auto identity = identityFields(doc);
  if (!identity) return error(identity.error());
  auto created = manager_.admin().createKeypair(doc.value("admin", false), doc.value("resource_policy", ""), *identity,
                                                call.caller.accessKey);
  if (!created) return error(created.error());
  // The secret is shown once, to the admin who asked; it is never logged.
  return json(201, nlohmann::json{{"access_key", created->accessKey}, {"secret_key", created->secretKey},
                                  {"admin", created->admin}, {"resource_policy", created->resourcePolicy},
                                  {"uid", created->uid}, {"gid", created->gid}}.dump());
}

Response Api::patchKeypair(Call& call) {
  auto body = objectBody(call.request);
  if (!body) return body.error();
  if (body->size() != 1 || !body->contains("resource_policy") || !(*body)["resource_policy"].is_string()) {
    return error(400, "invalid-request", "Invalid keypair change", "expected {\"resource_policy\": \"name\"}, \"\" for none");
  }
  return reply(200, manager_.admin().setKeypairResourcePolicy(call.params[0], (*body)["resource_policy"].get<std::string>()),
               keypairToJson);
}

// {"uid": N} or {"uid": N, "gid": N}; a gid left out is identity.session-gid's for the uid.
Response Api::setKeypairIdentity(Call& call) {
  auto body = objectBody(call.request);
  if (!body) return body.error();
  for (const auto& [key, value] : body->items()) {
    if (key != "uid" && key != "gid") {
      const std::string expected = R"(expected {"uid": N, "gid": N})";
      return error(DomainError{ErrorKind::InvalidRequest, "unknown field '" + key + "'; " + expected, key});
    }
  }
  if (!body->contains("uid")) return error(DomainError{ErrorKind::InvalidRequest, "uid is required", "uid"});
  auto identity = identityFields(*body);
  if (!identity) return error(identity.error());
  return reply(200, manager_.admin().setKeypairIdentity(call.params[0], *identity, call.caller.accessKey), keypairToJson);
}

}  // namespace

Result<http::AsyncHandler> managerApi(Manager& manager, ApiOptions options) {
  auto api = std::make_shared<Api>(manager, std::move(options));
  if (auto restored = api->restoreNonces(); !restored) return Failure{restored.error()};
  return http::AsyncHandler([api](Request request, Responder respond) { api->handle(std::move(request), std::move(respond)); });
}

http::AsyncHandler managerApi(Manager& manager, const std::string& clusterToken) {
  auto api = managerApi(manager, ApiOptions{clusterToken, "", nullptr});
  if (!api) throw std::runtime_error(api.error().message);
  return std::move(*api);
}

}  // namespace bai::manager
