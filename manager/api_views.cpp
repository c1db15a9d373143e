#include "api_views.hpp"

#include "parse_json.hpp"

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

Result<NewSession> parseNewSession(const std::string& body) {
  auto parsed = parseJson(body);
  if (!parsed) return Failure{parsed.error()};
  const nlohmann::json& doc = *parsed;
  if (!doc.is_object()) return fail(ErrorCode::InvalidArgument, "the body is not a JSON object");
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
    } else if (key == "image") {
      if (!value.is_string()) return fail(ErrorCode::InvalidArgument, "image must be a string such as \"busybox:1.36\"");
      session.image = value.get<std::string>();
    } else {
      return fail(ErrorCode::InvalidArgument,
                  "unknown field '" + key + "' (name, command, env, resources, scaling_group, image)");
    }
  }
  return session;
}

std::string sessionToJson(const SessionRecord& s, const std::string& pendingReason) {
  nlohmann::json resources = nlohmann::json::parse(s.requested.toJson());
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
                        {"image", s.image ? nlohmann::json(*s.image) : nlohmann::json()}};
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
  metrics.render(out);
  return out.text();
}

}  // namespace bai::manager
