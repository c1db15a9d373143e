#include "sqlite_rows.hpp"

namespace bai::manager::sqlite {
namespace {

// The slot figures of `agent`, from agent_resources.
Result<void> readAgentSlots(Connection& db, AgentRecord& agent) {
  Result<Statement> stmt =
      db.prepare("SELECT slot, capacity, used, largest FROM agent_resources WHERE agent_id = ?");
  if (!stmt.ok()) return Failure{stmt.error()};
  stmt->bind(agent.id);
  for (;;) {
    Result<bool> row = stmt->step();
    if (!row.ok()) return Failure{row.error()};
    if (!*row) return {};
    std::string slot = stmt->text(0);
    std::string where = "agent_resources of agent '" + agent.id + "' slot '" + slot + "'";
    Result<Quantity> capacity = quantityColumn(*stmt, 1, where);
    if (!capacity.ok()) return Failure{capacity.error()};
    Result<Quantity> used = quantityColumn(*stmt, 2, where);
    if (!used.ok()) return Failure{used.error()};
    Result<Quantity> largest = quantityColumn(*stmt, 3, where);
    if (!largest.ok()) return Failure{largest.error()};
    agent.slots[slot] = AgentSlotFigures{*capacity, *used, *largest};
  }
}

// runtimes_json: [{kind, available, reason}].
Result<void> readAgentRuntimes(const std::string& text, AgentRecord& agent) {
  const std::string where = "agent '" + agent.id + "' runtimes";
  Result<Json> runtimes = parseJson(text, where);
  if (!runtimes.ok()) return Failure{runtimes.error()};
  if (!runtimes->is_array()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": not a list");
  for (const Json& runtime : *runtimes) {
    if (!runtime.is_object() || !runtime.value("kind", Json()).is_string() ||
        !runtime.value("available", Json()).is_boolean() || !runtime.value("reason", Json()).is_string()) {
      return fail(ErrorCode::Internal, "corrupt store data in " + where + ": " + runtime.dump());
    }
    agent.runtimes.push_back({runtime["kind"].get<std::string>(), runtime["available"].get<bool>(),
                              runtime["reason"].get<std::string>()});
  }
  return {};
}

// images_json: [{name, id, size}].
Result<void> readAgentImages(const std::string& text, AgentRecord& agent) {
  const std::string where = "agent '" + agent.id + "' images";
  Result<Json> images = parseJson(text, where);
  if (!images.ok()) return Failure{images.error()};
  if (!images->is_array()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": not a list");
  for (const Json& image : *images) {
    if (!image.is_object() || !image.value("name", Json()).is_string() || !image.value("id", Json()).is_string() ||
        !image.value("size", Json()).is_number_integer()) {
      return fail(ErrorCode::Internal, "corrupt store data in " + where + ": " + image.dump());
    }
    agent.images.push_back({image["name"].get<std::string>(), image["id"].get<std::string>(),
                            image["size"].get<std::int64_t>()});
  }
  return {};
}

// service_ports_json: [{name, protocol, port}], each as ServicePort::parse reads it.
Result<void> readServicePorts(const std::string& text, SessionRecord& session) {
  const std::string where = "session '" + session.id + "' service ports";
  Result<Json> services = parseJson(text, where);
  if (!services.ok()) return Failure{services.error()};
  if (!services->is_array()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": not a list");
  for (const Json& entry : *services) {
    const std::string corrupt = "corrupt store data in " + where + ": " + entry.dump();
    if (!entry.is_object() || !entry.value("name", Json()).is_string() || !entry.value("protocol", Json()).is_string() ||
        !entry.value("port", Json()).is_number_unsigned()) {
      return fail(ErrorCode::Internal, corrupt);
    }
    auto service = protocol::ServicePort::parse(entry["name"].get<std::string>() + ":" + entry["protocol"].get<std::string>() +
                                              ":" + std::to_string(entry["port"].get<std::uint64_t>()));
    if (!service.ok()) return fail(ErrorCode::Internal, corrupt + ": " + service.error().message);
    session.servicePorts.push_back(std::move(*service));
  }
  return {};
}

// mounts_json: as mountsText writes it.
Result<void> readMounts(const std::string& text, SessionRecord& session) {
  const std::string where = "session '" + session.id + "' mounts";
  Result<Json> mounts = parseJson(text, where);
  if (!mounts.ok()) return Failure{mounts.error()};
  if (!mounts->is_array()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": not a list");
  for (const Json& entry : *mounts) {
    const bool shaped = entry.is_object() && entry.value("folder", Json()).is_string() && entry.value("id", Json()).is_string() &&
                        entry.value("source", Json()).is_string() && entry.value("target", Json()).is_string() &&
                        entry.value("read_only", Json()).is_boolean();
    if (!shaped) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": " + entry.dump());
    session.mounts.push_back(SessionMount{{entry["id"].get<std::string>(), entry["source"].get<std::string>(),
                                           entry["target"].get<std::string>(), entry["read_only"].get<bool>()},
                                          entry["folder"].get<std::string>()});
  }
  return {};
}

}  // namespace

Result<std::string> mountsText(const SessionRecord& session) {
  Json out = Json::array();
  for (const auto& [mount, folderName] : session.mounts) {
    out.push_back({{"folder", folderName}, {"id", mount.folderId}, {"source", mount.source},
                   {"target", mount.target}, {"read_only", mount.readOnly}});
  }
  return dumpJson(out, "the mounts of session '" + session.id + "'");
}

Result<std::string> runtimesText(const AgentRecord& agent) {
  Json out = Json::array();
  for (const auto& runtime : agent.runtimes) {
    out.push_back({{"kind", runtime.kind}, {"available", runtime.available}, {"reason", runtime.reason}});
  }
  return dumpJson(out, "the runtimes of agent '" + agent.id + "'");
}

Result<std::string> servicePortsText(const SessionRecord& session) {
  Json out = Json::array();
  for (const auto& service : session.servicePorts) {
    out.push_back({{"name", service.name}, {"protocol", service.protocol}, {"port", service.port}});
  }
  return dumpJson(out, "the service ports of session '" + session.id + "'");
}

Result<std::string> imagesText(const AgentRecord& agent) {
  Json out = Json::array();
  for (const auto& image : agent.images) out.push_back({{"name", image.name}, {"id", image.id}, {"size", image.sizeBytes}});
  return dumpJson(out, "the images of agent '" + agent.id + "'");
}

Result<std::vector<AgentRecord>> readAgentRows(Connection& db, const std::string& tail, const std::optional<std::string>& id) {
  std::vector<AgentRecord> found;
  {
    Result<Statement> stmt = db.prepare(kAgentColumns + tail);
    if (!stmt.ok()) return Failure{stmt.error()};
    if (id) stmt->bind(*id);
    for (;;) {
      Result<bool> row = stmt->step();
      if (!row.ok()) return Failure{row.error()};
      if (!*row) break;
      AgentRecord agent;
      agent.id = stmt->text(0);
      Result<AgentStatus> status = parseAgentStatus(stmt->text(1));
      if (!status.ok()) return Failure{corrupt("agent '" + agent.id + "'", status.error())};
      agent.status = *status;
      agent.rpcUrl = stmt->text(2);
      agent.region = stmt->text(3);
      agent.scalingGroup = stmt->text(4);
      agent.architecture = stmt->text(5);
      agent.version = stmt->text(6);
      agent.digest = static_cast<std::uint64_t>(stmt->integer(7));
      agent.pluginsJson = stmt->text(8);
      agent.deviceHealthJson = stmt->text(9);
      agent.lastEventSeq = static_cast<std::uint64_t>(stmt->integer(10));
      agent.registeredAtMillis = stmt->integer(11);
      agent.statusChangedAtMillis = stmt->integer(12);
      if (Result<void> read = readAgentRuntimes(stmt->text(13), agent); !read.ok()) return Failure{read.error()};
      if (Result<void> read = readAgentImages(stmt->text(14), agent); !read.ok()) return Failure{read.error()};
      found.push_back(std::move(agent));
    }
  }
  for (AgentRecord& agent : found) {
    if (Result<void> slots = readAgentSlots(db, agent); !slots.ok()) return Failure{slots.error()};
  }
  return found;
}

Result<std::vector<SessionRecord>> readSessionRows(Statement& stmt) {
  std::vector<SessionRecord> found;
  for (;;) {
    Result<bool> row = stmt.step();
    if (!row.ok()) return Failure{row.error()};
    if (!*row) return found;
    SessionRecord session;
    session.id = stmt.text(0);
    std::string where = "session '" + session.id + "'";
    session.name = stmt.text(1);
    session.owner = stmt.text(2);
    session.scalingGroup = stmt.text(3);
    Result<Json> command = parseJson(stmt.text(4), where);
    if (!command.ok()) return Failure{command.error()};
    Result<Json> env = parseJson(stmt.text(5), where);
    if (!env.ok()) return Failure{env.error()};
    if (!command->is_array() || !env->is_object()) {
      return fail(ErrorCode::Internal, "corrupt store data in " + where + ": command or env has the wrong shape");
    }
    for (const Json& word : *command) {
      if (!word.is_string()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": command");
      session.command.push_back(word.get<std::string>());
    }
    for (const auto& [key, value] : env->items()) {
      if (!value.is_string()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": env");
      session.env.emplace(key, value.get<std::string>());
    }
    Result<ResourceSlot> requested = slotsColumn(stmt, 6, where);
    if (!requested.ok()) return Failure{requested.error()};
    session.requested = std::move(*requested);
    Result<SessionStatus> status = parseSessionStatus(stmt.text(7));
    if (!status.ok()) return Failure{corrupt(where, status.error())};
    session.status = *status;
    session.statusReason = stmt.text(8);
    session.agentId = stmt.text(9);
    if (!stmt.isNull(10)) session.exitCode = static_cast<int>(stmt.integer(10));
    session.enqueueSeq = static_cast<std::uint64_t>(stmt.integer(11));
    session.createdAtMillis = stmt.integer(12);
    session.scheduledAtMillis = stmt.integer(13);
    session.startedAtMillis = stmt.integer(14);
    session.endedAtMillis = stmt.integer(15);
    session.idempotencyKey = stmt.text(16);
    session.requestDigest = stmt.text(17);
    if (!stmt.isNull(18)) session.image = stmt.text(18);
    session.openStdin = stmt.integer(19) != 0;
    session.tty = stmt.integer(20) != 0;
    if (Result<void> read = readServicePorts(stmt.text(21), session); !read.ok()) return Failure{read.error()};
    if (Result<void> read = readMounts(stmt.text(22), session); !read.ok()) return Failure{read.error()};
    found.push_back(std::move(session));
  }
}

Result<std::vector<AllocationRecord>> readAllocationRows(Statement& stmt) {
  std::vector<AllocationRecord> found;
  for (;;) {
    Result<bool> row = stmt.step();
    if (!row.ok()) return Failure{row.error()};
    if (!*row) return found;
    AllocationRecord allocation;
    allocation.sessionId = stmt.text(0);
    allocation.agentId = stmt.text(1);
    Result<ResourceSlot> slots = slotsColumn(stmt, 2, "allocation of session '" + allocation.sessionId + "'");
    if (!slots.ok()) return Failure{slots.error()};
    allocation.slots = std::move(*slots);
    allocation.released = stmt.integer(3) != 0;
    found.push_back(std::move(allocation));
  }
}

Result<std::vector<ScalingGroupRecord>> readScalingGroupRows(Connection& db, const std::string& tail,
                                                             const std::optional<std::string>& name) {
  Result<Statement> stmt = db.prepare(
      "SELECT name, description, sequencer, selector, options_json, slot_priority_json, hol_max_passes, "
      "hol_max_wait_ms, is_active, created_at_ms, image_pull_policy, allowed_images_json FROM scaling_groups" + tail);
  if (!stmt.ok()) return Failure{stmt.error()};
  if (name) stmt->bind(*name);
  std::vector<ScalingGroupRecord> found;
  for (;;) {
    Result<bool> row = stmt->step();
    if (!row.ok()) return Failure{row.error()};
    if (!*row) return found;
    ScalingGroupRecord group;
    group.name = stmt->text(0);
    std::string where = "scaling group '" + group.name + "'";
    group.description = stmt->text(1);
    group.sequencer = stmt->text(2);
    group.selector = stmt->text(3);
    group.optionsJson = stmt->text(4);
    Result<Json> priority = parseJson(stmt->text(5), where);
    if (!priority.ok()) return Failure{priority.error()};
    if (!priority->is_array()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": slot priority");
    for (const Json& slot : *priority) {
      if (!slot.is_string()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": slot priority");
      group.slotPriority.push_back(slot.get<std::string>());
    }
    group.holMaxPasses = static_cast<int>(stmt->integer(6));
    group.holMaxWaitMillis = stmt->integer(7);
    group.active = stmt->integer(8) != 0;
    group.createdAtMillis = stmt->integer(9);
    group.imagePullPolicy = stmt->text(10);
    Result<Json> allowed = parseJson(stmt->text(11), where);
    if (!allowed.ok()) return Failure{allowed.error()};
    if (!allowed->is_array()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": allowed images");
    for (const Json& pattern : *allowed) {
      if (!pattern.is_string()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": allowed images");
      group.allowedImages.push_back(pattern.get<std::string>());
    }
    found.push_back(std::move(group));
  }
}

Result<std::vector<ResourcePolicyRecord>> readResourcePolicyRows(Connection& db, const std::string& tail,
                                                                 const std::optional<std::string>& name) {
  Result<Statement> stmt = db.prepare(
      "SELECT name, total_resource_slots_json, default_unlimited, max_concurrent_sessions, max_pending_sessions, "
      "created_at_ms, default_session_slots_json, max_vfolder_count, max_vfolder_size FROM resource_policies" + tail);
  if (!stmt.ok()) return Failure{stmt.error()};
  if (name) stmt->bind(*name);
  std::vector<ResourcePolicyRecord> found;
  for (;;) {
    Result<bool> row = stmt->step();
    if (!row.ok()) return Failure{row.error()};
    if (!*row) return found;
    ResourcePolicyRecord policy;
    policy.name = stmt->text(0);
    Result<ResourceSlot> slots = slotsColumn(*stmt, 1, "resource policy '" + policy.name + "'");
    if (!slots.ok()) return Failure{slots.error()};
    policy.totalResourceSlots = std::move(*slots);
    policy.defaultUnlimited = stmt->integer(2) != 0;
    policy.maxConcurrentSessions = static_cast<int>(stmt->integer(3));
    policy.maxPendingSessions = static_cast<int>(stmt->integer(4));
    policy.createdAtMillis = stmt->integer(5);
    Result<ResourceSlot> defaults = slotsColumn(*stmt, 6, "resource policy '" + policy.name + "'");
    if (!defaults.ok()) return Failure{defaults.error()};
    policy.defaultSessionSlots = std::move(*defaults);
    policy.maxVfolderCount = stmt->integer(7);
    policy.maxVfolderSize = static_cast<std::uint64_t>(stmt->integer(8));
    found.push_back(std::move(policy));
  }
}

}  // namespace bai::manager::sqlite
