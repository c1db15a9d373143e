#include "manager_api.hpp"

#include "admin_records.hpp"

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

namespace bai::manager {
namespace {

using http::Request;
using http::Responder;
using http::Response;

Response json(int status, std::string body) { return Response{status, "application/json", std::move(body), {}}; }

Response error(const ApiFailure& failure) { return json(failure.status, failure.error.toJson()); }

Response error(int status, std::string type, std::string title, std::string detail) {
  return error(ApiFailure{status, {std::move(type), std::move(title), std::move(detail)}});
}

bool bearerMatches(const Request& request, const std::string& token) {
  const std::string header = request.header("authorization");
  const std::string expected = "Bearer " + token;
  return header.size() == expected.size() && CRYPTO_memcmp(header.data(), expected.data(), header.size()) == 0;
}

// The last path segments after `prefix`: "/v1/sessions/abc/logs" -> {"abc", "logs"}.
std::vector<std::string> segmentsAfter(const std::string& path, const std::string& prefix) {
  std::vector<std::string> out;
  std::size_t start = prefix.size();
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    out.push_back(http::urlDecode(path.substr(start, end - start)));
    start = end + 1;
  }
  return out;
}

Result<NewSession> parseNewSession(const std::string& body) {
  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return fail(ErrorCode::InvalidArgument, "the body is not a JSON object");
  NewSession session;
  for (const auto& [key, value] : doc.items()) {
    if (key == "name") {
      if (!value.is_string()) return fail(ErrorCode::InvalidArgument, "name must be a string");
      session.name = value.get<std::string>();
    } else if (key == "command") {
      if (!value.is_array()) return fail(ErrorCode::InvalidArgument, "command must be an array of strings");
      for (const auto& arg : value) {
        if (!arg.is_string()) return fail(ErrorCode::InvalidArgument, "command must be an array of strings");
        session.command.push_back(arg.get<std::string>());
      }
    } else if (key == "env") {
      if (!value.is_object()) return fail(ErrorCode::InvalidArgument, "env must be an object of strings");
      for (const auto& [name, text] : value.items()) {
        if (!text.is_string()) return fail(ErrorCode::InvalidArgument, "env." + name + " must be a string");
        if (name.empty() || name.find('=') != std::string::npos) {
          return fail(ErrorCode::InvalidArgument, "env name '" + name + "' is empty or contains '='");
        }
        session.env[name] = text.get<std::string>();
      }
    } else if (key == "resources") {
      if (!value.is_object()) return fail(ErrorCode::InvalidArgument, "resources must be an object {slot: amount}");
      for (const auto& [slot, amount] : value.items()) {
        if (amount.is_string()) {
          session.resources.emplace_back(slot, amount.get<std::string>());
        } else if (amount.is_number()) {
          session.resources.emplace_back(slot, amount.dump());  // the number's own text, never a float round trip
        } else {
          return fail(ErrorCode::InvalidArgument, "resources." + slot + " must be a number or a string such as \"4g\"");
        }
      }
    } else if (key == "scaling_group") {
      if (!value.is_string()) return fail(ErrorCode::InvalidArgument, "scaling_group must be a string");
      session.scalingGroup = value.get<std::string>();
    } else {
      return fail(ErrorCode::InvalidArgument, "unknown field '" + key + "' (name, command, env, resources, scaling_group)");
    }
  }
  return session;
}

// Scaling groups, resource policies and one keypair: admin-only paths beyond the lists.
bool isAdminRecordPath(const std::string& path) {
  for (const std::string prefix : {"/v1/scaling-groups", "/v1/resource-policies"}) {
    if (path == prefix || path.rfind(prefix + "/", 0) == 0) return true;
  }
  return path.rfind("/v1/keypairs/", 0) == 0;
}

Result<nlohmann::json, Response> objectBody(const Request& request) {
  nlohmann::json doc = nlohmann::json::parse(request.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Failure{error(400, "invalid-request", "Invalid request body", "the body is not a JSON object")};
  }
  return doc;
}

template <class Record>
Response recordReply(int status, const ApiResult<Record>& result, nlohmann::json (*toJson)(const Record&)) {
  return result ? json(status, toJson(*result).dump()) : error(result.error());
}

template <class Record>
std::string listJson(const std::vector<Record>& records, nlohmann::json (*toJson)(const Record&)) {
  nlohmann::json out = nlohmann::json::array();
  for (const Record& record : records) out.push_back(toJson(record));
  return out.dump();
}

nlohmann::json keypairToJson(const KeypairRecord& key) {  // never the secret
  return {{"access_key", key.accessKey}, {"admin", key.admin}, {"active", key.active},
          {"created_at_ms", key.createdAtMillis}, {"resource_policy", key.resourcePolicy}};
}

std::string sessionJson(Manager& manager, const SessionRecord& session) {
  return sessionToJson(session, session.status == SessionStatus::Pending ? manager.pendingReason(session.id) : "");
}

class Api {
 public:
  Api(Manager& manager, std::string clusterToken)
      : manager_(manager),
        clusterToken_(std::move(clusterToken)),
        verifier_([&manager](const std::string& accessKey) -> std::optional<KeyInfo> {
          auto keypair = manager.keypair(accessKey);
          if (!keypair) return std::nullopt;
          return KeyInfo{keypair->secretKey, keypair->admin, keypair->active};
        }) {}

  void handle(Request request, Responder respond) {
    const std::string& path = request.path;
    if (path == "/healthz" && request.method == "GET") {
      return respond(json(200, nlohmann::json{{"status", "ok"}, {"version", BAI_VERSION}}.dump()));
    }
    if (path.rfind("/v1/agents/", 0) == 0 && request.header("authorization").rfind("Bearer ", 0) == 0) {
      return agentRoute(request, std::move(respond));
    }
    if (path == "/metrics" && request.method == "GET" && bearerMatches(request, clusterToken_)) {
      return respond(Response{200, "text/plain; version=0.0.4", manager_.metricsText(), {}});
    }
    auto caller = authenticate(request);
    if (!caller) return respond(caller.error());
    userRoute(request, *caller, std::move(respond));
  }

 private:
  Result<Caller, Response> authenticate(const Request& request) {
    auto principal = verifier_.verify(request.method, request.target, request.headers, request.body);
    if (principal) return Caller{principal->accessKey, principal->admin};
    manager_.metrics().authFailures.fetch_add(1, std::memory_order_relaxed);
    const int status = principal.error().type == "nonce-cache-full" ? 503 : 401;
    Response response = error(status, principal.error().type, "Unauthorized", principal.error().detail);
    response.headers["WWW-Authenticate"] = "BAI-HMAC-SHA256";
    return Failure<Response>{response};
  }

  void agentRoute(const Request& request, Responder respond) {
    if (!bearerMatches(request, clusterToken_)) {
      manager_.metrics().authFailures.fetch_add(1, std::memory_order_relaxed);
      return respond(error(401, "bad-cluster-token", "Unauthorized", "the bearer token is not this cluster's"));
    }
    const auto parts = segmentsAfter(request.path, "/v1/agents/");
    if (parts.size() != 2 || parts[0].empty() || request.method != "POST") {
      return respond(error(404, "not-found", "No such resource", request.method + " " + request.path));
    }
    const std::string& agentId = parts[0];
    if (parts[1] == "heartbeat" || parts[1] == "register") {
      auto heartbeat = protocol::Heartbeat::fromJson(request.body);
      if (!heartbeat) return respond(error(400, "invalid-request", "Invalid heartbeat", heartbeat.error().message));
      if (parts[1] == "register" && !heartbeat->state) {
        return respond(error(400, "invalid-request", "Invalid registration", "a registration carries the agent's state"));
      }
      // Answered later when the report waits for the group commit of agents' rows.
      return manager_.heartbeat(agentId, *heartbeat, [respond = std::move(respond)](auto reply) {
        respond(reply ? json(200, reply->toJson()) : error(reply.error()));
      });
    }
    if (parts[1] == "events") {
      auto batch = protocol::EventBatch::fromJson(request.body);
      if (!batch) return respond(error(400, "invalid-request", "Invalid event batch", batch.error().message));
      auto ack = manager_.events(agentId, *batch);
      return respond(ack ? json(200, ack->toJson()) : error(ack.error()));
    }
    return respond(error(404, "not-found", "No such resource", request.method + " " + request.path));
  }

  void userRoute(const Request& request, const Caller& caller, Responder respond) {
    const std::string& path = request.path;
    const std::string& method = request.method;
    if (path == "/v1/sessions") {
      if (method == "POST") return respond(createSession(request, caller));
      if (method == "GET") return respond(listSessions(request, caller));
      return respond(error(405, "method-not-allowed", "Method not allowed", method + " " + path));
    }
    if (path.rfind("/v1/sessions/", 0) == 0) {
      const auto parts = segmentsAfter(path, "/v1/sessions/");
      if (parts[0].empty() || parts.size() > 2 || (parts.size() == 2 && parts[1] != "logs")) {
        return respond(error(404, "not-found", "No such resource", path));
      }
      const std::string& id = parts[0];
      if (parts.size() == 2 && method == "GET") return respond(sessionLogs(request, caller, id));
      if (parts.size() == 1 && method == "GET") return sessionGet(request, caller, id, std::move(respond));
      if (parts.size() == 1 && method == "DELETE") {
        auto destroyed = manager_.destroySession(caller, id);
        return respond(destroyed ? json(200, sessionJson(manager_, *destroyed)) : error(destroyed.error()));
      }
      return respond(error(405, "method-not-allowed", "Method not allowed", method + " " + path));
    }
    if (path == "/v1/resource-slots" && method == "GET") {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [slot, type] : manager_.slotTypes()) out[slot] = slotTypeName(type);
      return respond(json(200, out.dump()));
    }
    if (!caller.admin) {
      const bool known = path == "/metrics" || path == "/v1/agents" || path.rfind("/v1/agents/", 0) == 0 || path == "/v1/keypairs" ||
                         isAdminRecordPath(path);
      return respond(known ? error(403, "forbidden", "Admins only", method + " " + path + " needs an admin keypair")
                           : error(404, "not-found", "No such resource", method + " " + path));
    }
    respond(adminRoute(request));
  }

  Response adminRoute(const Request& request) {
    const std::string& path = request.path;
    const std::string& method = request.method;
    if (path == "/metrics" && method == "GET") return Response{200, "text/plain; version=0.0.4", manager_.metricsText(), {}};
    if (isAdminRecordPath(path)) return adminRecordRoute(request);
    if (path == "/v1/agents" && method == "GET") {
      const auto types = manager_.slotTypes();
      std::string out = "[";
      for (const auto& agent : manager_.agents()) out += (out.size() > 1 ? "," : "") + agentToJson(agent, types);
      return json(200, out + "]");
    }
    if (path.rfind("/v1/agents/", 0) == 0 && method == "GET") {
      const auto parts = segmentsAfter(path, "/v1/agents/");
      const auto types = manager_.slotTypes();
      for (const auto& agent : manager_.agents()) {
        if (agent.record.id != parts[0]) continue;
        if (parts.size() == 1) return json(200, agentToJson(agent, types));
        if (parts.size() == 2 && parts[1] == "alloc-map") {
          auto reply = manager_.agentRpcGet(agent.record.id, "/v1/alloc-map");
          if (!reply) return error(reply.error());
          return Response{reply->status, "application/json", reply->body, {}};
        }
        break;
      }
      return error(404, "unknown-agent", "No such agent", "no agent '" + parts[0] + "'");
    }
    if (path == "/v1/keypairs" && method == "POST") {
      const nlohmann::json doc = request.body.empty() ? nlohmann::json::object() : nlohmann::json::parse(request.body, nullptr, false);
      if (doc.is_discarded() || !doc.is_object() || (doc.contains("admin") && !doc["admin"].is_boolean()) ||
          (doc.contains("resource_policy") && !doc["resource_policy"].is_string())) {
        return error(400, "invalid-request", "Invalid keypair request",
                     "expected {\"admin\": true|false, \"resource_policy\": \"name\"}");
      }
      auto created = manager_.createKeypair(doc.value("admin", false), doc.value("resource_policy", ""));
      if (!created) return error(created.error());
      // The secret is shown once, to the admin who asked; it is never logged.
      return json(201, nlohmann::json{{"access_key", created->accessKey}, {"secret_key", created->secretKey},
                                      {"admin", created->admin}, {"resource_policy", created->resourcePolicy}}.dump());
    }
    if (path == "/v1/keypairs" && method == "GET") {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& key : manager_.keypairs()) {
        out.push_back(keypairToJson(key));
      }
      return json(200, out.dump());
    }
    return error(404, "not-found", "No such resource", method + " " + path);
  }

  // The paths of isAdminRecordPath.
  Response adminRecordRoute(const Request& request) {
    const std::string& path = request.path;
    const std::string& method = request.method;
    const auto notAllowed = [&] { return error(405, "method-not-allowed", "Method not allowed", method + " " + path); };
    if (path.rfind("/v1/keypairs/", 0) == 0) {
      const auto parts = segmentsAfter(path, "/v1/keypairs/");
      if (parts.size() != 1 || parts[0].empty()) return error(404, "not-found", "No such resource", method + " " + path);
      return method == "PATCH" ? patchKeypair(request, parts[0]) : notAllowed();
    }
    const bool groups = path.rfind("/v1/scaling-groups", 0) == 0;
    const std::string collection = groups ? "/v1/scaling-groups" : "/v1/resource-policies";
    if (path == collection) {
      if (method == "GET") return json(200, groups ? listJson(manager_.scalingGroups(), scalingGroupToJson)
                                                   : listJson(manager_.resourcePolicies(), resourcePolicyToJson));
      if (method != "POST") return notAllowed();
      auto body = objectBody(request);
      if (!body) return body.error();
      return groups ? recordReply(201, manager_.createScalingGroup(*body), scalingGroupToJson)
                    : recordReply(201, manager_.createResourcePolicy(*body), resourcePolicyToJson);
    }
    const auto parts = segmentsAfter(path, collection + "/");
    if (parts.size() != 1 || parts[0].empty()) return error(404, "not-found", "No such resource", method + " " + path);
    const std::string& name = parts[0];
    if (method == "GET") {
      if (groups) {
        if (auto group = manager_.scalingGroup(name)) return json(200, scalingGroupToJson(*group).dump());
        return error(404, "unknown-scaling-group", "No such scaling group", "no scaling group '" + name + "'");
      }
      if (auto policy = manager_.resourcePolicy(name)) return json(200, resourcePolicyToJson(*policy).dump());
      return error(404, "unknown-resource-policy", "No such resource policy", "no resource policy '" + name + "'");
    }
    if (method != "PATCH") return notAllowed();
    auto body = objectBody(request);
    if (!body) return body.error();
    return groups ? recordReply(200, manager_.patchScalingGroup(name, *body), scalingGroupToJson)
                  : recordReply(200, manager_.patchResourcePolicy(name, *body), resourcePolicyToJson);
  }

  Response patchKeypair(const Request& request, const std::string& accessKey) {
    auto body = objectBody(request);
    if (!body) return body.error();
    if (body->size() != 1 || !body->contains("resource_policy") || !(*body)["resource_policy"].is_string()) {
      return error(400, "invalid-request", "Invalid keypair change",
                   "expected {\"resource_policy\": \"name\"}, \"\" for none");
    }
    const std::string policy = (*body)["resource_policy"].get<std::string>();
    return recordReply(200, manager_.setKeypairResourcePolicy(accessKey, policy), keypairToJson);
  }

  Response createSession(const Request& request, const Caller& caller) {
    auto parsed = parseNewSession(request.body);
    if (!parsed) return error(400, "invalid-request", "Invalid session", parsed.error().message);
    auto created = manager_.createSession(caller, *parsed);
    return created ? json(201, sessionJson(manager_, *created)) : error(created.error());
  }

  Response listSessions(const Request& request, const Caller& caller) {
    std::optional<SessionStatus> status;
    if (auto it = request.query.find("status"); it != request.query.end()) {
      auto parsed = parseSessionStatus(it->second);
      if (!parsed) return error(400, "invalid-request", "Invalid status filter", parsed.error().message);
      status = *parsed;
    }
    std::string out = "[";
    for (const auto& session : manager_.listSessions(caller, status)) {
      out += (out.size() > 1 ? "," : "") + sessionJson(manager_, session);
    }
    return json(200, out + "]");
  }

  void sessionGet(const Request& request, const Caller& caller, const std::string& id, Responder respond) {
    std::chrono::milliseconds wait{0};
    if (auto it = request.query.find("wait"); it != request.query.end()) {
      auto seconds = Quantity::parse(it->second);
      if (!seconds || seconds->isNegative() || !seconds->isFinite() || *seconds > Quantity(86400)) {
        return respond(error(400, "invalid-request", "Invalid wait", "wait must be seconds from 0 to 86400, not '" + it->second + "'"));
      }
      wait = std::chrono::milliseconds(static_cast<std::int64_t>(seconds->raw() / 1000));
    }
    manager_.waitForSession(caller, id, wait, [this, respond](ApiResult<SessionRecord> session) {
      respond(session ? json(200, sessionJson(manager_, *session)) : error(session.error()));
    });
  }

  Response sessionLogs(const Request& request, const Caller& caller, const std::string& id) {
    const std::size_t question = request.target.find('?');
    auto reply = manager_.sessionLogs(caller, id, question == std::string::npos ? "" : request.target.substr(question + 1));
    if (!reply) return error(reply.error());
    return Response{reply->status, reply->contentType.empty() ? "text/plain" : reply->contentType, reply->body, {}};
  }

  Manager& manager_;
  std::string clusterToken_;
  RequestVerifier verifier_;
};

}  // namespace

http::AsyncHandler managerApi(Manager& manager, const std::string& clusterToken) {
  auto api = std::make_shared<Api>(manager, clusterToken);
  return [api](Request request, Responder respond) { api->handle(std::move(request), std::move(respond)); };
}

}  // namespace bai::manager
