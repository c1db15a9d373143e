#include "api_views.hpp"

#include "parse_json.hpp"
#include "vfolder_views.hpp"

#include <nlohmann/json.hpp>

namespace bai::manager {

nlohmann::json runtimesJson(const std::vector<AgentRuntimeRecord>& runtimes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& runtime : runtimes) {
    out.push_back({{"kind", runtime.kind}, {"available", runtime.available}});
    if (!runtime.reason.empty()) out.back()["reason"] = runtime.reason;
  }
  return out;
}

nlohmann::json imagesJson(const AgentRecord& agent) {
  nlohmann::json images = nlohmann::json::array();
  for (const auto& image : agent.images) images.push_back({{"name", image.name}, {"id", image.id}, {"size", image.sizeBytes}});
  return {{"agent", agent.id}, {"status", agentStatusName(agent.status)}, {"scaling_group", agent.scalingGroup},
          {"runtimes", runtimesJson(agent.runtimes)}, {"images", images}};
}

namespace {

// One of service_ports: {"name", "protocol"?, "port"}, by ServicePort::parse's rules.
Outcome<protocol::ServicePort> servicePortOf(const nlohmann::json& entry, const std::string& where) {
  const std::string shape = where + " must be {\"name\": \"jupyter\", \"protocol\": \"tcp\"|\"http\", \"port\": 1..65535}";
  if (!entry.is_object()) return refuse(ErrorKind::InvalidRequest, shape, "service_ports");
  for (const auto& [key, value] : entry.items()) {
    const bool known = ((key == "name" || key == "protocol") && value.is_string()) || (key == "port" && value.is_number_integer());
    if (!known) return refuse(ErrorKind::InvalidRequest, shape + ", not " + entry.dump(), "service_ports");
  }
  if (!entry.contains("name") || !entry.contains("port")) {
    return refuse(ErrorKind::InvalidRequest, shape + ", not " + entry.dump(), "service_ports");
  }
  // The text form, so that both ways of declaring a service follow one rule.
  const std::string text = entry["name"].get<std::string>() + ":" + entry.value("protocol", std::string("tcp")) + ":" +
                           entry["port"].dump();
  auto service = protocol::ServicePort::parse(text);
  if (!service) return refuse(ErrorKind::InvalidRequest, where + ": " + service.error().message, "service_ports");
  return std::move(*service);
}

Outcome<std::vector<protocol::ServicePort>> servicePortsOf(const nlohmann::json& value) {
  const std::string limit = std::to_string(protocol::kMaxServicePorts);
  if (!value.is_array() || value.size() > protocol::kMaxServicePorts) {
    return refuse(ErrorKind::InvalidRequest, "service_ports must be an array of at most " + limit + " {name, protocol, port}",
                  "service_ports");
  }
  std::vector<protocol::ServicePort> services;
  for (std::size_t i = 0; i < value.size(); ++i) {
    auto service = servicePortOf(value[i], "service_ports[" + std::to_string(i) + "]");
    if (!service) return Failure{service.error()};
    for (const auto& earlier : services) {
      if (earlier.name == service->name) {
        return refuse(ErrorKind::InvalidRequest, "service_ports: '" + service->name + "' is declared twice", "service_ports");
      }
    }
    services.push_back(std::move(*service));
  }
  return services;
}

}  // namespace

Outcome<NewSession> parseNewSession(const std::string& body) {
  auto parsed = parseJson(body);
  if (!parsed) return refuse(ErrorKind::InvalidRequest, parsed.error().message);
  const nlohmann::json& doc = *parsed;
  if (!doc.is_object()) return refuse(ErrorKind::InvalidRequest, "the body is not a JSON object");
  NewSession session;
  for (const auto& [key, value] : doc.items()) {
    auto invalid = [&key](std::string detail) { return refuse(ErrorKind::InvalidRequest, std::move(detail), key); };
    if (key == "name") {
      if (!value.is_string()) return invalid("name must be a string");
      session.name = value.get<std::string>();
    } else if (key == "command") {
      if (!value.is_array()) return invalid("command must be an array of strings");
      for (const auto& arg : value) {
        if (!arg.is_string()) return invalid("command must be an array of strings");
        session.command.push_back(arg.get<std::string>());
      }
    } else if (key == "env") {
      if (!value.is_object()) return invalid("env must be an object of strings");
      for (const auto& [name, text] : value.items()) {
        if (!text.is_string()) return invalid("env." + name + " must be a string");
        if (name.empty() || name.find('=') != std::string::npos) return invalid("env name '" + name + "' is empty or contains '='");
        session.env[name] = text.get<std::string>();
      }
    } else if (key == "resources") {
      if (!value.is_object()) return invalid("resources must be an object {slot: amount}");
      for (const auto& [slot, amount] : value.items()) {
        if (amount.is_string()) {
          session.resources.emplace_back(slot, amount.get<std::string>());
        } else if (amount.is_number()) {
          session.resources.emplace_back(slot, amount.dump());  // the number's own text, never a float round trip
        } else {
          return invalid("resources." + slot + " must be a number or a string such as \"4g\"");
        }
      }
    } else if (key == "scaling_group") {
      if (!value.is_string()) return invalid("scaling_group must be a string");
      session.scalingGroup = value.get<std::string>();
    } else if (key == "image") {
      if (!value.is_string()) return invalid("image must be a string such as \"busybox:1.36\"");
      session.image = value.get<std::string>();
    } else if (key == "stdin" || key == "tty") {
      if (!value.is_boolean()) return invalid(key + " must be true or false");
      (key == "stdin" ? session.openStdin : session.tty) = value.get<bool>();
    } else if (key == "service_ports") {
      auto services = servicePortsOf(value);
      if (!services) return Failure{services.error()};
      session.servicePorts = std::move(*services);
    } else if (key == "mounts") {
      auto mounts = mountRequestsOf(value);
      if (!mounts) return Failure{mounts.error()};
      session.mounts = std::move(*mounts);
    } else {
      return invalid("unknown field '" + key +
                     "' (name, command, env, resources, scaling_group, image, stdin, tty, service_ports, mounts)");
    }
  }
  // A terminal is read from: tty implies stdin.
  session.openStdin = session.openStdin || session.tty;
  return session;
}

std::string sessionToJson(const SessionRecord& s, const std::string& pendingReason, std::optional<std::int64_t> lastActivityMillis) {
  nlohmann::json resources = nlohmann::json::parse(s.requested.toJson());
  nlohmann::json services = nlohmann::json::array();
  for (const auto& service : s.servicePorts) {
    services.push_back({{"name", service.name}, {"protocol", service.protocol}, {"port", service.port}});
  }
  nlohmann::json out = {{"id", s.id},
                        {"name", s.name},
                        {"owner", s.owner},
                        {"scaling_group", s.scalingGroup},
                        {"command", s.command},
                        {"env", s.env},
                        {"resources", resources},
                        {"status", sessionStatusName(s.status)},
                        {"status_reason", s.status == SessionStatus::Pending && !pendingReason.empty() ? pendingReason
                                                                                                      : s.statusReason},
                        {"agent", s.agentId},
                        {"exit_code", s.exitCode ? nlohmann::json(*s.exitCode) : nlohmann::json()},
                        {"created_at_ms", s.createdAtMillis},
                        {"scheduled_at_ms", s.scheduledAtMillis},
                        {"started_at_ms", s.startedAtMillis},
                        {"ended_at_ms", s.endedAtMillis},
                        {"image", s.image ? nlohmann::json(*s.image) : nlohmann::json()},
                        {"stdin", s.openStdin},
                        {"tty", s.tty},
                        {"service_ports", services},
                        {"mounts", mountsJson(s.mounts)},
                        {"last_activity_at_ms", lastActivityMillis ? nlohmann::json(*lastActivityMillis) : nlohmann::json()}};
  return out.dump();
}

std::string agentToJson(const AgentSummary& a, const std::map<std::string, SlotType>& types) {
  nlohmann::json slots = nlohmann::json::object();
  for (const auto& [slot, figures] : a.record.slots) {
    auto type = types.find(slot);
    slots[slot] = {{"type", type == types.end() ? "count" : slotTypeName(type->second)},
                   {"capacity", figures.capacity.toString()},
                   {"used", figures.used.toString()},
                   {"largest_allocatable", figures.largest.toString()}};
  }
  nlohmann::json out = {{"id", a.record.id},
                        {"status", agentStatusName(a.record.status)},
                        {"rpc_url", a.record.rpcUrl},
                        {"region", a.record.region},
                        {"scaling_group", a.record.scalingGroup},
                        {"architecture", a.record.architecture},
                        {"version", a.record.version},
                        {"slots", slots},
                        {"plugins", nlohmann::json::parse(a.record.pluginsJson, nullptr, false)},
                        {"device_health", nlohmann::json::parse(a.record.deviceHealthJson, nullptr, false)},
                        {"runtimes", runtimesJson(a.record.runtimes)},
                        {"image_count", a.record.images.size()},
                        {"seconds_since_heartbeat", a.secondsSinceHeartbeat},
                        {"registered_at_ms", a.record.registeredAtMillis},
                        {"status_changed_at_ms", a.record.statusChangedAtMillis}};
  return out.dump();
}


nlohmann::json keypairToJson(const KeypairRecord& key) {
  return {{"access_key", key.accessKey}, {"admin", key.admin}, {"active", key.active},
          {"created_at_ms", key.createdAtMillis}, {"resource_policy", key.resourcePolicy},
          {"uid", key.uid}, {"gid", key.gid}};
}

std::string metricsText(const ClusterFigures& figures, const Metrics& metrics) {
  PrometheusText out;
  out.family("bai_manager_agents", MetricType::Gauge, "agents by state");
  for (const auto& [state, count] : figures.agentsByStatus) out.sample({{"state", state}}, count);
  out.family("bai_manager_slot_capacity", MetricType::Gauge, "capacity of live agents per slot");
  for (const auto& [slot, f] : figures.slotsOfLive) out.sample({{"slot", slot}}, f.first);
  out.family("bai_manager_slot_used", MetricType::Gauge, "reserved on live agents per slot");
  for (const auto& [slot, f] : figures.slotsOfLive) out.sample({{"slot", slot}}, f.second);
  out.family("bai_manager_sessions", MetricType::Gauge, "active sessions by status");
  for (SessionStatus status : {SessionStatus::Pending, SessionStatus::Scheduled, SessionStatus::Preparing, SessionStatus::Running,
                               SessionStatus::Terminating}) {
    auto count = figures.activeSessions.find(status);
    out.sample({{"status", sessionStatusName(status)}}, count == figures.activeSessions.end() ? 0 : count->second);
  }
  out.family("bai_manager_interactive_streams", MetricType::Gauge, "terminals, execs and service tunnels relayed now");
  out.sample({}, figures.relayedStreams);
  out.family("bai_manager_interactive_queued_bytes", MetricType::Gauge,
             "bytes relayed streams hold towards peers that read slowly (at most one message each way)");
  out.sample({}, figures.relayQueuedBytes);
  metrics.render(out);
  return out.text();
}

}  // namespace bai::manager
