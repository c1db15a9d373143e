#include <bai/client.hpp>
#include <bai/request_signing.hpp>

#include "api_reply.hpp"
#include "bounded_json.hpp"
#include "http_client.hpp"

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <random>
#include <sstream>
#include <thread>

namespace bai::client_internal {

client::ApiError errorFromReply(int status, const std::string& body) {
  client::ApiError error{status, "", "", ""};
  const nlohmann::json doc = internal::parseBoundedJson(body).document;
  if (doc.is_object()) {
    error.type = doc.value("type", "");
    error.title = doc.value("title", "");
    error.detail = doc.value("detail", "");
  }
  if (error.type.empty()) error.type = "http-" + std::to_string(status);
  if (error.title.empty() && error.detail.empty()) {
    error.title = "HTTP " + std::to_string(status);
    error.detail = body.substr(0, 200);
  }
  return error;
}

}  // namespace bai::client_internal

namespace bai::client {
namespace {

using Json = nlohmann::json;

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

Failure<ApiError> invalidReply(const std::string& what) {
  return Failure<ApiError>{ApiError{0, "invalid-reply", "Unexpected answer from the manager", what}};
}

ApiError errorFrom(const RawResponse& response) { return client_internal::errorFromReply(response.status, response.body); }

// Converts one document and keeps its text in the record's `json` field.
template <class Convert>
auto record(const Json& doc, Convert convert) {
  auto value = convert(doc);
  if constexpr (requires { value.json; }) value.json = doc.dump();
  return value;
}

// Reads one reply: a 2xx JSON document converted by `convert`, else the server's error.
template <class T, class Convert>
ClientResult<T> expect(const ClientResult<RawResponse>& response, Convert convert) {
  if (!response) return Failure{response.error()};
  if (response->status < 200 || response->status > 299) return Failure{errorFrom(*response)};
  const internal::BoundedJson parsed = internal::parseBoundedJson(response->body);
  if (!parsed) return invalidReply("the body is not JSON: " + parsed.error);
  const Json& doc = parsed.document;
  try {
    return record(doc, convert);
  } catch (const std::exception& e) {  // a JSON type error or a bad quantity
    return invalidReply(e.what());
  }
}

template <class T, class Convert>
ClientResult<std::vector<T>> expectList(const ClientResult<RawResponse>& response, Convert convert) {
  return expect<std::vector<T>>(response, [&](const Json& doc) {
    std::vector<T> out;
    for (const Json& item : doc) out.push_back(record(item, convert));
    return out;
  });
}

std::int64_t millis(const Json& doc, const char* key) {
  const auto it = doc.find(key);
  return it == doc.end() || it->is_null() ? 0 : it->get<std::int64_t>();
}

Quantity quantity(const Json& value) {
  auto parsed = Quantity::parse(value.get<std::string>());
  if (!parsed) throw std::invalid_argument(parsed.error().message);
  return *parsed;
}

std::map<std::string, std::string> stringMap(const Json& doc) {
  std::map<std::string, std::string> out;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    out[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
  }
  return out;
}

Session sessionFrom(const Json& doc) {
  Session s;
  s.id = doc.at("id").get<std::string>();
  s.name = doc.value("name", "");
  s.owner = doc.value("owner", "");
  s.scalingGroup = doc.value("scaling_group", "");
  s.command = doc.value("command", std::vector<std::string>{});
  s.env = doc.value("env", std::map<std::string, std::string>{});
  if (doc.contains("resources")) s.resources = stringMap(doc.at("resources"));
  s.status = doc.at("status").get<std::string>();
  s.statusReason = doc.value("status_reason", "");
  s.agent = doc.value("agent", "");
  if (doc.contains("exit_code") && !doc.at("exit_code").is_null()) s.exitCode = doc.at("exit_code").get<int>();
  s.createdAtMs = millis(doc, "created_at_ms");
  s.scheduledAtMs = millis(doc, "scheduled_at_ms");
  s.startedAtMs = millis(doc, "started_at_ms");
  s.endedAtMs = millis(doc, "ended_at_ms");
  if (doc.contains("image") && !doc.at("image").is_null()) s.image = doc.at("image").get<std::string>();
  s.lastActivityAtMs = millis(doc, "last_activity_at_ms");
  s.openStdin = doc.value("stdin", false);
  s.tty = doc.value("tty", false);
  for (const Json& service : doc.value("service_ports", Json::array())) {
    s.servicePorts.push_back({service.at("name").get<std::string>(), service.value("protocol", "tcp"),
                              service.at("port").get<std::uint16_t>()});
  }
  for (const Json& mount : doc.value("mounts", Json::array())) {
    s.mounts.push_back({mount.value("folder", ""), mount.value("id", ""), mount.at("target").get<std::string>(),
                        mount.value("read_only", false)});
  }
  return s;
}

std::vector<RuntimeInfo> runtimesFrom(const Json& doc) {
  std::vector<RuntimeInfo> out;
  for (const Json& runtime : doc) {
    out.push_back({runtime.at("kind").get<std::string>(), runtime.at("available").get<bool>(), runtime.value("reason", "")});
  }
  return out;
}

AgentImages agentImagesFrom(const Json& doc) {
  AgentImages out{doc.at("agent").get<std::string>(), doc.value("status", ""), doc.value("scaling_group", ""),
                  runtimesFrom(doc.value("runtimes", Json::array())), {}, {}};
  for (const Json& image : doc.at("images")) {
    out.images.push_back({image.at("name").get<std::string>(), image.value("id", ""), image.value("size", std::int64_t{0})});
  }
  return out;
}

AgentInfo agentFrom(const Json& doc) {
  AgentInfo a;
  a.id = doc.at("id").get<std::string>();
  a.status = doc.at("status").get<std::string>();
  a.rpcUrl = doc.value("rpc_url", "");
  a.region = doc.value("region", "");
  a.scalingGroup = doc.value("scaling_group", "");
  a.architecture = doc.value("architecture", "");
  a.version = doc.value("version", "");
  for (const auto& [slot, figures] : doc.at("slots").items()) {
    a.slots[slot] = SlotUsage{figures.at("type").get<std::string>(), quantity(figures.at("capacity")),
                              quantity(figures.at("used")), quantity(figures.at("largest_allocatable"))};
  }
  a.secondsSinceHeartbeat = doc.value("seconds_since_heartbeat", 0.0);
  a.registeredAtMs = millis(doc, "registered_at_ms");
  a.statusChangedAtMs = millis(doc, "status_changed_at_ms");
  a.pluginsJson = doc.contains("plugins") ? doc.at("plugins").dump() : "null";
  a.deviceHealthJson = doc.contains("device_health") ? doc.at("device_health").dump() : "null";
  // A manager from before runtimes says nothing of them: its agents run host processes.
  a.runtimes = doc.contains("runtimes") ? runtimesFrom(doc.at("runtimes")) : std::vector<RuntimeInfo>{{"process", true, ""}};
  a.imageCount = doc.value("image_count", std::size_t{0});
  return a;
}

AllocationMap allocationMapFrom(const Json& doc) {
  AllocationMap out;
  out.agentId = doc.value("agent_id", "");
  for (const Json& map : doc.at("maps")) {
    SlotAllocationMap slot{map.at("slot").get<std::string>(), map.value("type", ""), map.value("kind", ""),
                           map.value("strategy", ""), quantity(map.at("free")),
                           quantity(map.at("largest_allocatable")), {}};
    for (const Json& device : map.at("devices")) {
      DeviceAllocation d{device.at("id").get<std::string>(), device.value("numa_node", -1),
                         quantity(device.at("capacity")), quantity(device.at("allocated")),
                         device.value("enabled", true), {}};
      for (const auto& [session, amount] : device.at("sessions").items()) d.sessions[session] = quantity(amount);
      slot.devices.push_back(std::move(d));
    }
    out.maps.push_back(std::move(slot));
  }
  return out;
}

Keypair keypairFrom(const Json& doc) {
  return Keypair{doc.at("access_key").get<std::string>(), doc.value("admin", false), doc.value("active", true),
                 doc.value("resource_policy", ""), millis(doc, "created_at_ms"), {}, doc.value("uid", std::int64_t{0}),
                 doc.value("gid", std::int64_t{0})};
}

ResourcePolicy resourcePolicyFrom(const Json& doc) {
  return ResourcePolicy{doc.at("name").get<std::string>(),
                        stringMap(doc.value("total_resource_slots", Json::object())),
                        doc.value("default_for_unspecified", ""),
                        doc.value("max_concurrent_sessions", 0),
                        doc.value("max_pending_session_count", 0),
                        millis(doc, "created_at_ms"),
                        {},
                        doc.value("max_vfolder_count", std::uint64_t{0}),
                        doc.value("max_vfolder_size", std::uint64_t{0})};
}

ScalingGroup scalingGroupFrom(const Json& doc) {
  return ScalingGroup{doc.at("name").get<std::string>(),
                      doc.value("description", ""),
                      doc.value("sequencer", ""),
                      doc.value("selector", ""),
                      doc.value("options", Json::object()).dump(),
                      doc.value("slot_priority", std::vector<std::string>{}),
                      doc.value("hol_max_passes", 0),
                      doc.value("hol_max_wait_ms", std::int64_t{0}),
                      doc.value("active", true),
                      millis(doc, "created_at_ms"),
                      {},
                      doc.value("image_pull_policy", "never"),
                      doc.value("allowed_images", std::vector<std::string>{})};
}

// Sends a caller's fields (JSON text) and reads the record the manager answers with. The
// text must be an object before it is sent: the manager would refuse it too, but this
// names the caller's mistake without a round trip.
template <class T, class Convert>
ClientResult<T> sendFields(const Client& client, const char* method, const std::string& target,
                           const std::string& fieldsJson, Convert convert) {
  const internal::BoundedJson parsed = internal::parseBoundedJson(fieldsJson);
  const Json& doc = parsed.document;
  if (!doc.is_object()) {
    const std::string why = parsed ? "expected a JSON object, not: " + fieldsJson : parsed.error;
    return Failure<ApiError>{ApiError{0, "invalid-request", "Invalid fields", why}};
  }
  return expect<T>(client.call(method, target, doc.dump()), convert);
}

std::string segment(const std::string& text) { return http::urlEncode(text); }

}  // namespace

std::string ApiError::message() const {
  if (title.empty()) return detail;
  if (detail.empty()) return title;
  return title + ": " + detail;
}

// ---- Service ports --------------------------------------------------------------------

// ---- Config -----------------------------------------------------------------------

std::filesystem::path Config::defaultFile() {
  if (const std::string explicitFile = environment("BAI_CONFIG"); !explicitFile.empty()) return explicitFile;
  if (const std::string xdg = environment("XDG_CONFIG_HOME"); !xdg.empty()) return std::filesystem::path(xdg) / "bai/config.toml";
  return std::filesystem::path(environment("HOME")) / ".config/bai/config.toml";
}

Result<Config> Config::load(const std::filesystem::path& file) {
  Config config;
  std::error_code error;
  const bool named = !environment("BAI_CONFIG").empty();
  if (std::filesystem::exists(file, error)) {
    toml::table table;
    try {
      table = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
      return fail(ErrorCode::InvalidArgument, file.string() + ":" + std::to_string(e.source().begin.line) + ": " +
                                                  std::string(e.description()));
    }
    for (const auto& [key, value] : table) {
      const std::string name(key.str());
      std::string* field = name == "endpoint"     ? &config.endpoint
                           : name == "access-key" ? &config.accessKey
                           : name == "secret-key" ? &config.secretKey
                           : name == "ca-file"    ? &config.caFile
                                                  : nullptr;
      if (field == nullptr) {
        return fail(ErrorCode::InvalidArgument,
                    file.string() + ": unknown key '" + name + "' (endpoint, access-key, secret-key, ca-file)");
      }
      if (!value.is_string()) return fail(ErrorCode::InvalidArgument, file.string() + ": " + name + " must be a string");
      *field = value.value<std::string>().value_or("");
    }
    struct stat info {};
    if (!config.secretKey.empty() && ::stat(file.c_str(), &info) == 0 && (info.st_mode & 077) != 0) {
      return fail(ErrorCode::InvalidArgument, file.string() + " holds a secret key but others may read it; run: chmod 600 " +
                                                  file.string());
    }
  } else if (named) {
    return fail(ErrorCode::NotFound, "BAI_CONFIG names " + file.string() + ", which does not exist");
  }
  const std::pair<const char*, std::string*> overrides[] = {{"BAI_ENDPOINT", &config.endpoint},
                                                            {"BAI_ACCESS_KEY", &config.accessKey},
                                                            {"BAI_SECRET_KEY", &config.secretKey},
                                                            {"BAI_CA_FILE", &config.caFile}};
  for (const auto& [name, field] : overrides) {
    if (std::string value = environment(name); !value.empty()) *field = std::move(value);
  }
  while (!config.endpoint.empty() && config.endpoint.back() == '/') config.endpoint.pop_back();
  if (config.endpoint.rfind("http://", 0) != 0 && config.endpoint.rfind("https://", 0) != 0) {
    return fail(ErrorCode::InvalidArgument, "endpoint '" + config.endpoint + "' must start with http:// or https://");
  }
  return config;
}

Result<void> Config::requireCredentials() const {
  if (!accessKey.empty() && !secretKey.empty()) return {};
  return fail(ErrorCode::InvalidArgument,
              std::string("no ") + (accessKey.empty() ? "access key" : "secret key") +
                  ": set BAI_ACCESS_KEY and BAI_SECRET_KEY, or write access-key and secret-key to " +
                  defaultFile().string() + " (mode 0600)");
}

// ---- Client -------------------------------------------------------------------------

bool Session::isFinal() const { return status == "TERMINATED" || status == "ERROR" || status == "CANCELLED"; }

namespace {

// One signed exchange (freshly dated and with a new nonce each time it is called).
ClientResult<RawResponse> exchange(const Config& config, const std::string& method, const std::string& target,
                                   const std::string& body, std::chrono::milliseconds extraTimeout,
                                   const std::map<std::string, std::string>& extraHeaders = {}) {
  http::ClientRequest request;
  request.method = method;
  request.url = config.endpoint + target;
  request.body = body;
  request.caFile = config.caFile;
  request.timeout = config.timeout + extraTimeout;
  if (target != "/healthz") {
    request.headers = auth::signRequest({config.accessKey, config.secretKey}, method, target, body,
                                        std::chrono::system_clock::now());
  }
  if (!body.empty()) request.headers["Content-Type"] = "application/json";
  for (const auto& [name, value] : extraHeaders) request.headers[name] = value;
  auto response = http::send(request);
  if (!response) {
    return Failure<ApiError>{ApiError{0, "unreachable", "Cannot reach the manager", response.error().message}};
  }
  return RawResponse{response->status, response->contentType, std::move(response->body), std::move(response->headers)};
}

// 128 random bits in hex: one logical submission, however often it is sent.
std::string newIdempotencyKey() {
  std::random_device random;
  static const char* hex = "0123456789abcdef";
  std::string key;
  for (int word = 0; word < 4; ++word) {
    std::uint32_t bits = random();
    for (int i = 0; i < 8; ++i, bits >>= 4) key += hex[bits & 15];
  }
  return key;
}

// No answer, or a manager on its way down: the same request may be sent again.
bool worthRetrying(const ClientResult<RawResponse>& response) { return !response || response->status == 503; }

std::uint64_t headerNumber(const RawResponse& response, const char* name, std::uint64_t fallback) {
  auto it = response.headers.find(name);
  if (it == response.headers.end() || it->second.empty() || it->second.size() > 19 ||
      it->second.find_first_not_of("0123456789") != std::string::npos) {
    return fallback;
  }
  return std::stoull(it->second);
}

}  // namespace

Client::Client(Config config) : config_(std::move(config)) {}

ClientResult<RawResponse> Client::call(const std::string& method, const std::string& target, const std::string& body,
                                       std::chrono::milliseconds extraTimeout) const {
  return exchange(config_, method, target, body, extraTimeout);
}

ClientResult<std::string> Client::version() const {
  return expect<std::string>(call("GET", "/healthz"), [](const Json& doc) { return doc.value("version", ""); });
}

ClientResult<Session> Client::createSession(const SessionSpec& spec) const {
  Json resources = Json::object();
  for (const auto& [slot, amount] : spec.resources) {
    if (resources.contains(slot)) {
      return Failure<ApiError>{ApiError{0, "invalid-request", "Invalid session", "slot '" + slot + "' is requested twice"}};
    }
    resources[slot] = amount;
  }
  Json doc = {{"command", spec.command}, {"resources", resources}};
  if (!spec.image.empty()) doc["image"] = spec.image;
  if (!spec.env.empty()) doc["env"] = spec.env;
  if (!spec.name.empty()) doc["name"] = spec.name;
  if (!spec.scalingGroup.empty()) doc["scaling_group"] = spec.scalingGroup;
  if (spec.openStdin || spec.tty) doc["stdin"] = true;
  if (spec.tty) doc["tty"] = true;
  if (!spec.servicePorts.empty()) {
    Json services = Json::array();
    for (const ServicePort& service : spec.servicePorts) {
      services.push_back({{"name", service.name}, {"protocol", service.protocol}, {"port", service.port}});
    }
    doc["service_ports"] = services;
  }
  if (!spec.mounts.empty()) {
    Json mounts = Json::array();
    for (const MountRequest& mount : spec.mounts) {
      Json item = {{"folder", mount.folder}, {"read_only", mount.readOnly}};
      if (!mount.target.empty()) item["target"] = mount.target;
      mounts.push_back(std::move(item));
    }
    doc["mounts"] = mounts;
  }
  const std::string body = doc.dump();
  const std::map<std::string, std::string> key = {
      {"Idempotency-Key", spec.idempotencyKey.empty() ? newIdempotencyKey() : spec.idempotencyKey}};
  auto response = exchange(config_, "POST", "/v1/sessions", body, std::chrono::milliseconds(0), key);
  auto delay = config_.retryDelay;
  for (int retry = 0; retry < config_.submitRetries && worthRetrying(response); ++retry, delay *= 2) {
    std::this_thread::sleep_for(delay);
    response = exchange(config_, "POST", "/v1/sessions", body, std::chrono::milliseconds(0), key);
  }
  return expect<Session>(response, sessionFrom);
}

ClientResult<std::vector<Session>> Client::listSessions(const std::string& status) const {
  const std::string target = status.empty() ? "/v1/sessions" : "/v1/sessions?status=" + http::urlEncode(status);
  return expectList<Session>(call("GET", target), sessionFrom);
}

ClientResult<Session> Client::session(const std::string& id, std::chrono::milliseconds wait) const {
  std::string target = "/v1/sessions/" + segment(id);
  if (wait.count() > 0) {
    std::ostringstream seconds;
    seconds << wait.count() / 1000 << '.' << std::setfill('0') << std::setw(3) << wait.count() % 1000;
    target += "?wait=" + seconds.str();
  }
  return expect<Session>(call("GET", target, {}, wait), sessionFrom);
}

ClientResult<std::string> Client::sessionLogs(const std::string& id, const LogQuery& query) const {
  auto page = sessionLogPage(id, query);
  if (!page) return Failure{page.error()};
  return std::move(page->text);
}

ClientResult<LogPage> Client::sessionLogPage(const std::string& id, const LogQuery& query) const {
  std::string target = "/v1/sessions/" + segment(id) + "/logs?stream=" + http::urlEncode(query.stream) +
                       "&offset=" + std::to_string(query.offset);
  if (query.limit) target += "&limit=" + std::to_string(*query.limit);
  if (query.tail) target += "&tail=" + std::to_string(*query.tail);
  auto response = call("GET", target);
  if (!response) return Failure{response.error()};
  if (response->status != 200) return Failure{errorFrom(*response)};
  LogPage page;
  // A manager that does not say where the page lies: it is taken as the last one.
  page.offset = headerNumber(*response, "x-bai-log-offset", query.offset);
  page.nextOffset = headerNumber(*response, "x-bai-log-next-offset", page.offset + response->body.size());
  page.size = headerNumber(*response, "x-bai-log-size", page.nextOffset);
  page.text = std::move(response->body);
  return page;
}

ClientResult<Session> Client::destroySession(const std::string& id) const {
  return expect<Session>(call("DELETE", "/v1/sessions/" + segment(id)), sessionFrom);
}

ClientResult<std::map<std::string, std::string>> Client::resourceSlots() const {
  return expect<std::map<std::string, std::string>>(call("GET", "/v1/resource-slots"), stringMap);
}

ClientResult<std::vector<AgentInfo>> Client::agents() const {
  return expectList<AgentInfo>(call("GET", "/v1/agents"), agentFrom);
}

ClientResult<AgentInfo> Client::agent(const std::string& id) const {
  return expect<AgentInfo>(call("GET", "/v1/agents/" + segment(id)), agentFrom);
}

ClientResult<AllocationMap> Client::allocationMap(const std::string& agentId) const {
  return expect<AllocationMap>(call("GET", "/v1/agents/" + segment(agentId) + "/alloc-map"), allocationMapFrom);
}

ClientResult<std::vector<AgentImages>> Client::images(const std::string& agentId) const {
  const std::string target = agentId.empty() ? "/v1/images" : "/v1/images?agent=" + http::urlEncode(agentId);
  return expectList<AgentImages>(call("GET", target), agentImagesFrom);
}

ClientResult<AgentImages> Client::refreshAgentImages(const std::string& agentId) const {
  return expect<AgentImages>(call("POST", "/v1/agents/" + segment(agentId) + "/images/refresh"), agentImagesFrom);
}

ClientResult<std::vector<Keypair>> Client::keypairs() const {
  return expectList<Keypair>(call("GET", "/v1/keypairs"), keypairFrom);
}

ClientResult<NewKeypair> Client::createKeypair(bool admin, const std::string& resourcePolicy) const {
  return createKeypair(admin, resourcePolicy, KeypairIds{});
}

ClientResult<NewKeypair> Client::createKeypair(bool admin, const std::string& resourcePolicy, const KeypairIds& ids) const {
  Json doc = {{"admin", admin}};
  if (!resourcePolicy.empty()) doc["resource_policy"] = resourcePolicy;
  if (ids.uid) doc["uid"] = *ids.uid;
  if (ids.gid) doc["gid"] = *ids.gid;
  return expect<NewKeypair>(call("POST", "/v1/keypairs", doc.dump()), [](const Json& reply) {
    return NewKeypair{reply.at("access_key").get<std::string>(), reply.at("secret_key").get<std::string>(),
                      reply.value("admin", false), reply.value("resource_policy", ""), {},
                      reply.value("uid", std::int64_t{0}), reply.value("gid", std::int64_t{0})};
  });
}

ClientResult<Keypair> Client::keypair(const std::string& accessKey) const {
  return expect<Keypair>(call("GET", "/v1/keypairs/" + segment(accessKey)), keypairFrom);
}

ClientResult<Keypair> Client::setKeypairIdentity(const std::string& accessKey, const KeypairIds& ids) const {
  Json doc = Json::object();
  if (ids.uid) doc["uid"] = *ids.uid;
  if (ids.gid) doc["gid"] = *ids.gid;
  return expect<Keypair>(call("PUT", "/v1/keypairs/" + segment(accessKey) + "/identity", doc.dump()), keypairFrom);
}

ClientResult<Keypair> Client::setKeypairResourcePolicy(const std::string& accessKey, const std::string& policy) const {
  return expect<Keypair>(call("PATCH", "/v1/keypairs/" + segment(accessKey), Json{{"resource_policy", policy}}.dump()),
                         keypairFrom);
}

ClientResult<std::vector<ResourcePolicy>> Client::resourcePolicies() const {
  return expectList<ResourcePolicy>(call("GET", "/v1/resource-policies"), resourcePolicyFrom);
}

ClientResult<ResourcePolicy> Client::resourcePolicy(const std::string& name) const {
  return expect<ResourcePolicy>(call("GET", "/v1/resource-policies/" + segment(name)), resourcePolicyFrom);
}

ClientResult<ResourcePolicy> Client::createResourcePolicy(const std::string& fieldsJson) const {
  return sendFields<ResourcePolicy>(*this, "POST", "/v1/resource-policies", fieldsJson, resourcePolicyFrom);
}

ClientResult<ResourcePolicy> Client::updateResourcePolicy(const std::string& name, const std::string& fieldsJson) const {
  return sendFields<ResourcePolicy>(*this, "PATCH", "/v1/resource-policies/" + segment(name), fieldsJson, resourcePolicyFrom);
}

ClientResult<std::vector<ScalingGroup>> Client::scalingGroups() const {
  return expectList<ScalingGroup>(call("GET", "/v1/scaling-groups"), scalingGroupFrom);
}

ClientResult<ScalingGroup> Client::scalingGroup(const std::string& name) const {
  return expect<ScalingGroup>(call("GET", "/v1/scaling-groups/" + segment(name)), scalingGroupFrom);
}

ClientResult<ScalingGroup> Client::createScalingGroup(const std::string& fieldsJson) const {
  return sendFields<ScalingGroup>(*this, "POST", "/v1/scaling-groups", fieldsJson, scalingGroupFrom);
}

ClientResult<ScalingGroup> Client::updateScalingGroup(const std::string& name, const std::string& fieldsJson) const {
  return sendFields<ScalingGroup>(*this, "PATCH", "/v1/scaling-groups/" + segment(name), fieldsJson, scalingGroupFrom);
}

std::string formatSlotAmount(const std::string& type, Quantity amount) {
  if (type != "bytes" || !amount.isFinite() || amount.isNegative()) return amount.toString();
  auto bytes = BinarySize::fromQuantity(amount);
  if (!bytes) return amount.toString();
  static constexpr char kUnits[] = "kmgtpe";
  const std::uint64_t value = bytes->bytes();
  int unit = -1;
  while (unit + 1 < 6 && value >> (10 * (unit + 2)) != 0) ++unit;
  if (unit < 0) return std::to_string(value);
  // Two decimals, trailing zeros dropped: 4g, 1.5g, 9.21g.
  const double scaled = static_cast<double>(value) / static_cast<double>(std::uint64_t{1} << (10 * (unit + 1)));
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", scaled);
  std::string out = text;
  out.erase(out.find_last_not_of('0') + 1);
  if (out.back() == '.') out.pop_back();
  return out + kUnits[unit];
}

}  // namespace bai::client
