#include <bai/protocol.hpp>

#include <bai/image_reference.hpp>

#include "protocol_reader.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace bai::protocol {
namespace {

using json = nlohmann::json;
using detail::Reader;
using detail::parseDocument;

json slotsJson(const ResourceSlot& slots) { return json::parse(slots.toJson()); }

json allocationJson(const DeviceAllocation& allocation) {
  json out = json::object();
  for (const auto& [slot, devices] : allocation) {
    json perDevice = json::object();
    for (const auto& [device, amount] : devices) perDevice[device] = amount.toString();
    out[slot] = std::move(perDevice);
  }
  return out;
}

Result<DeviceAllocation> readAllocation(const json& object, const std::string& where) {
  DeviceAllocation out;
  if (!object.is_object()) return fail(ErrorCode::InvalidArgument, where + ": expected an object");
  for (const auto& [slot, devices] : object.items()) {
    if (!SlotName::parse(slot)) return fail(ErrorCode::InvalidArgument, where + ": invalid slot name '" + slot + "'");
    if (!devices.is_object()) return fail(ErrorCode::InvalidArgument, where + "." + slot + ": expected an object");
    for (const auto& [device, amount] : devices.items()) {
      auto parsed = amount.is_string() ? Quantity::parse(amount.get<std::string>())
                                       : Result<Quantity>(fail(ErrorCode::InvalidArgument, "expected a decimal string"));
      if (!parsed) return fail(ErrorCode::InvalidArgument, where + "." + slot + "." + device + ": " + parsed.error().message);
      out[slot][device] = *parsed;
    }
  }
  return out;
}

json runtimesJson(const std::vector<RuntimeReport>& runtimes) {
  json out = json::array();
  for (const auto& runtime : runtimes) {
    out.push_back({{"kind", runtime.kind}, {"available", runtime.available}});
    if (!runtime.reason.empty()) out.back()["reason"] = runtime.reason;
  }
  return out;
}

json imagesJson(const std::vector<ImageSummary>& images) {
  json out = json::array();
  for (const auto& image : images) out.push_back({{"name", image.name}, {"id", image.id}, {"size", image.sizeBytes}});
  return out;
}

// runtimes: [{kind, available, reason?}] and images: [{name, id, size}], both optional.
void readRuntimes(const json& object, Reader& r, AgentState& s) {
  if (const json* runtimes = r.array("runtimes", false)) {
    for (const auto& entry : *runtimes) {
      if (!entry.is_object()) return r.note("heartbeat.state.runtimes: expected objects");
      Reader rr(entry, "heartbeat.state.runtimes[]");
      RuntimeReport report{rr.string("kind"), rr.boolean("available"), rr.string("reason", false)};
      if (!rr.ok()) return r.note(rr.failure().error.message);
      if (!isRuntimeKind(report.kind)) return r.note("heartbeat.state.runtimes[].kind: unknown runtime '" + report.kind + "'");
      s.runtimes.push_back(std::move(report));
    }
  } else if (!object.contains("runtimes")) {
    s.runtimes.push_back({kProcessRuntime, true, ""});
  }
  if (const json* images = r.array("images", false)) {
    for (const auto& entry : *images) {
      if (!entry.is_object()) return r.note("heartbeat.state.images: expected objects");
      Reader ir(entry, "heartbeat.state.images[]");
      ImageSummary image{ir.string("name"), ir.string("id"), ir.integer("size")};
      if (!ir.ok()) return r.note(ir.failure().error.message);
      s.images.push_back(std::move(image));
    }
  }
}

json stateJson(const AgentState& s) {
  json slotTypes = json::object();
  for (const auto& [slot, type] : s.slotTypes) slotTypes[slot] = slotTypeName(type);
  json plugins = json::array();
  for (const auto& p : s.plugins) {
    plugins.push_back({{"name", p.name}, {"version", p.version}, {"key", p.key},
                       {"extra_info", json::parse(p.extraInfoJson, nullptr, false)}});
    if (p.withdrawn) plugins.back()["withdrawn"] = *p.withdrawn;
  }
  json health = json::array();
  for (const auto& h : s.deviceHealth) {
    health.push_back({{"plugin", h.pluginKey}, {"device", h.deviceId}, {"health", h.health}, {"reason", h.reason}});
  }
  json sessions = json::array();
  for (const auto& session : s.sessions) sessions.push_back({{"id", session.id}, {"state", sessionStateName(session.state)}});
  json quanta = json::object();
  for (const auto& [slot, quantum] : s.slotQuanta) quanta[slot] = quantum.toString();
  return {{"rpc_address", s.rpcAddress},       {"region", s.region},
          {"slot_quanta", quanta},
          {"scaling_group", s.scalingGroup},   {"architecture", s.architecture},
          {"version", s.version},              {"available", slotsJson(s.available)},
          {"occupied", slotsJson(s.occupied)}, {"largest_allocatable", slotsJson(s.largestAllocatable)},
          {"slot_types", slotTypes},           {"plugins", plugins},
          {"device_health", health},           {"sessions", sessions},
          {"runtimes", runtimesJson(s.runtimes)}, {"images", imagesJson(s.images)}};
}

// slot_quanta: {slot: "0.01"}, each a positive finite decimal (optional: older agents send none).
void readQuanta(const json& quanta, Reader& r, AgentState& s) {
  for (const auto& [slot, quantum] : quanta.items()) {
    auto parsed = quantum.is_string() ? Quantity::parse(quantum.get<std::string>())
                                      : Result<Quantity>(fail(ErrorCode::InvalidArgument, "expected a decimal string"));
    if (!SlotName::parse(slot)) {
      r.note("heartbeat.state.slot_quanta: invalid slot name '" + slot + "'");
    } else if (!parsed || parsed->isNegative() || parsed->isZero() || parsed->isInfinite()) {
      r.note("heartbeat.state.slot_quanta." + slot + ": expected a positive decimal string");
    } else {
      s.slotQuanta[slot] = *parsed;
    }
  }
}

Result<AgentState> readState(const json& object) {
  Reader r(object, "heartbeat.state");
  AgentState s;
  s.rpcAddress = r.string("rpc_address");
  s.region = r.string("region");
  s.scalingGroup = r.string("scaling_group");
  s.architecture = r.string("architecture");
  s.version = r.string("version");
  s.available = r.slots("available");
  s.occupied = r.slots("occupied");
  s.largestAllocatable = r.slots("largest_allocatable");
  if (const json* types = r.object("slot_types")) {
    for (const auto& [slot, type] : types->items()) {
      auto name = SlotName::parse(slot);
      auto parsed = type.is_string() ? parseSlotType(type.get<std::string>())
                                     : Result<SlotType>(fail(ErrorCode::InvalidArgument, "expected a string"));
      if (!name) r.note("heartbeat.state.slot_types: " + name.error().message);
      else if (!parsed) r.note("heartbeat.state.slot_types." + slot + ": " + parsed.error().message);
      else s.slotTypes[slot] = *parsed;
    }
  }
  if (const json* quanta = r.object("slot_quanta", false)) readQuanta(*quanta, r, s);
  if (const json* plugins = r.array("plugins")) {
    for (const auto& p : *plugins) {
      if (!p.is_object()) return fail(ErrorCode::InvalidArgument, "heartbeat.state.plugins: expected objects");
      Reader pr(p, "heartbeat.state.plugins[]");
      PluginReport report{pr.string("name"), pr.string("version"), pr.string("key"), "{}"};
      if (p.contains("extra_info")) report.extraInfoJson = p["extra_info"].dump();
      if (p.contains("withdrawn")) report.withdrawn = pr.string("withdrawn");
      if (!pr.ok()) return pr.failure();
      s.plugins.push_back(std::move(report));
    }
  }
  if (const json* health = r.array("device_health")) {
    for (const auto& h : *health) {
      if (!h.is_object()) return fail(ErrorCode::InvalidArgument, "heartbeat.state.device_health: expected objects");
      Reader hr(h, "heartbeat.state.device_health[]");
      DeviceHealthReport report{hr.string("plugin"), hr.string("device"), hr.string("health"), hr.string("reason", false)};
      if (!hr.ok()) return hr.failure();
      s.deviceHealth.push_back(std::move(report));
    }
  }
  if (const json* sessions = r.array("sessions")) {
    for (const auto& session : *sessions) {
      if (!session.is_object()) return fail(ErrorCode::InvalidArgument, "heartbeat.state.sessions: expected objects");
      Reader sr(session, "heartbeat.state.sessions[]");
      const std::string id = sr.string("id");
      auto state = parseSessionState(sr.string("state"));
      if (!sr.ok()) return sr.failure();
      if (!state) return fail(ErrorCode::InvalidArgument, "heartbeat.state.sessions[]: " + state.error().message);
      s.sessions.push_back({id, *state});
    }
  }
  readRuntimes(object, r, s);
  if (!r.ok()) return r.failure();
  return s;
}

}  // namespace

bool isRuntimeKind(std::string_view kind) { return kind == kProcessRuntime || kind == kContainerRuntime; }

const char* pullPolicyName(PullPolicy policy) {
  switch (policy) {
    case PullPolicy::Never: return "never";
    case PullPolicy::IfMissing: return "if-missing";
    case PullPolicy::Always: return "always";
  }
  return "never";
}

Result<PullPolicy> parsePullPolicy(std::string_view text) {
  if (text == "never") return PullPolicy::Never;
  if (text == "if-missing") return PullPolicy::IfMissing;
  if (text == "always") return PullPolicy::Always;
  return fail(ErrorCode::InvalidArgument,
              "unknown pull policy '" + std::string(text) + "' (expected never, if-missing or always)");
}

const char* sessionStateName(SessionState state) {
  switch (state) {
    case SessionState::Pending: return "pending";
    case SessionState::Preparing: return "preparing";
    case SessionState::Running: return "running";
    case SessionState::Exited: return "exited";
    case SessionState::Failed: return "failed";
    case SessionState::Destroyed: return "destroyed";
  }
  return "unknown";
}

Result<SessionState> parseSessionState(std::string_view text) {
  for (SessionState s : {SessionState::Pending, SessionState::Preparing, SessionState::Running, SessionState::Exited,
                         SessionState::Failed, SessionState::Destroyed}) {
    if (text == sessionStateName(s)) return s;
  }
  return fail(ErrorCode::InvalidArgument, "unknown session state '" + std::string(text) + "'");
}

const char* eventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::Started: return "started";
    case EventKind::Exited: return "exited";
    case EventKind::Failed: return "failed";
  }
  return "unknown";
}

std::string Heartbeat::toJson() const {
  json out{{"protocol", kVersion}, {"agent_id", agentId}, {"digest", digest}};
  if (state) out["state"] = stateJson(*state);
  return out.dump();
}

Result<Heartbeat> Heartbeat::fromJson(std::string_view text) {
  auto document = parseDocument(text, "heartbeat", true);
  if (!document) return Failure{document.error()};
  Reader r(*document, "heartbeat");
  Heartbeat h;
  h.agentId = r.string("agent_id");
  h.digest = r.unsignedInteger("digest");
  if (!r.ok()) return r.failure();
  if (h.agentId.empty()) return fail(ErrorCode::InvalidArgument, "heartbeat: empty 'agent_id'");
  if (r.has("state")) {
    auto state = readState((*document)["state"]);
    if (!state) return Failure{state.error()};
    h.state = std::move(*state);
  }
  return h;
}

std::string HeartbeatReply::toJson() const { return json{{"protocol", kVersion}, {"send_full", sendFull}}.dump(); }

Result<HeartbeatReply> HeartbeatReply::fromJson(std::string_view text) {
  auto document = parseDocument(text, "heartbeat reply", true);
  if (!document) return Failure{document.error()};
  Reader r(*document, "heartbeat reply");
  HeartbeatReply reply{r.boolean("send_full")};
  if (!r.ok()) return r.failure();
  return reply;
}

std::string EventBatch::toJson() const {
  json events = json::array();
  for (const auto& e : this->events) {
    json event{{"seq", e.seq}, {"session_id", e.sessionId}, {"kind", eventKindName(e.kind)}, {"at_ms", e.atMillis}};
    if (e.exitCode) event["exit_code"] = *e.exitCode;
    if (!e.reason.empty()) event["reason"] = e.reason;
    events.push_back(std::move(event));
  }
  return json{{"protocol", kVersion}, {"agent_id", agentId}, {"events", events}}.dump();
}

Result<EventBatch> EventBatch::fromJson(std::string_view text) {
  auto document = parseDocument(text, "events", true);
  if (!document) return Failure{document.error()};
  Reader r(*document, "events");
  EventBatch batch;
  batch.agentId = r.string("agent_id");
  const json* events = r.array("events");
  if (!r.ok()) return r.failure();
  for (const auto& e : *events) {
    if (!e.is_object()) return fail(ErrorCode::InvalidArgument, "events: expected objects");
    Reader er(e, "events[]");
    SessionEvent event;
    event.seq = er.unsignedInteger("seq");
    event.sessionId = er.string("session_id");
    const std::string kind = er.string("kind");
    event.atMillis = er.integer("at_ms");
    if (er.has("exit_code")) event.exitCode = er.exitCode("exit_code");
    event.reason = er.string("reason", false);
    if (!er.ok()) return er.failure();
    if (kind == "started") event.kind = EventKind::Started;
    else if (kind == "exited") event.kind = EventKind::Exited;
    else if (kind == "failed") event.kind = EventKind::Failed;
    else return fail(ErrorCode::InvalidArgument, "events[].kind: unknown kind '" + kind + "'");
    if (event.kind == EventKind::Exited && !event.exitCode) {
      return fail(ErrorCode::InvalidArgument, "events[]: an 'exited' event needs 'exit_code'");
    }
    batch.events.push_back(std::move(event));
  }
  return batch;
}

std::string EventAck::toJson() const { return json{{"protocol", kVersion}, {"acked_through", ackedThrough}}.dump(); }

Result<EventAck> EventAck::fromJson(std::string_view text) {
  auto document = parseDocument(text, "event ack", true);
  if (!document) return Failure{document.error()};
  Reader r(*document, "event ack");
  EventAck ack{r.unsignedInteger("acked_through")};
  if (!r.ok()) return r.failure();
  return ack;
}

bool isSessionId(std::string_view id) {
  return !id.empty() && id.size() <= 128 &&
         id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == std::string_view::npos;
}

bool isOwnerName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_' || c == '@';
  });
}

namespace {

Result<void> checkServicePorts(const std::vector<ServicePort>& services) {
  if (services.size() > kMaxServicePorts) {
    return fail(ErrorCode::InvalidArgument, "at most " + std::to_string(kMaxServicePorts) + " service ports");
  }
  for (std::size_t i = 0; i < services.size(); ++i) {
    for (std::size_t k = 0; k < i; ++k) {
      if (services[k].name == services[i].name) {
        return fail(ErrorCode::InvalidArgument, "service '" + services[i].name + "' is declared twice");
      }
    }
  }
  return {};
}

json servicePortsJson(const std::vector<ServicePort>& services) {
  json out = json::array();
  for (const auto& service : services) {
    out.push_back({{"name", service.name}, {"protocol", service.protocol}, {"port", service.port}});
  }
  return out;
}

Result<std::vector<ServicePort>> readServicePorts(const json& array, const std::string& where) {
  std::vector<ServicePort> services;
  for (const auto& entry : array) {
    if (!entry.is_object()) return fail(ErrorCode::InvalidArgument, where + ": expected objects");
    Reader r(entry, where + "[]");
    const std::string name = r.string("name");
    const std::string protocol = r.has("protocol") ? r.string("protocol") : "tcp";
    const std::uint64_t port = r.unsignedInteger("port");
    if (!r.ok()) return r.failure();
    auto service = ServicePort::parse(name + ":" + protocol + ":" + std::to_string(port));
    if (!service) return fail(ErrorCode::InvalidArgument, where + ": " + service.error().message);
    services.push_back(std::move(*service));
  }
  if (auto checked = checkServicePorts(services); !checked) {
    return fail(ErrorCode::InvalidArgument, where + ": " + checked.error().message);
  }
  return services;
}

}  // namespace

Result<std::vector<ServicePort>> parseServicePortList(std::string_view text) {
  std::vector<ServicePort> services;
  for (std::size_t start = 0; start <= text.size();) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = text.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) {
      auto service = ServicePort::parse(item);
      if (!service) return Failure{service.error()};
      services.push_back(std::move(*service));
    }
    start = comma + 1;
  }
  if (auto checked = checkServicePorts(services); !checked) return Failure{checked.error()};
  return services;
}

std::string servicePortEnvName(std::string_view serviceName) {
  std::string name = "BAI_SERVICE_PORT_";
  for (char c : serviceName) name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

namespace {

json mountsJson(const std::vector<FolderMount>& mounts) {
  json out = json::array();
  for (const FolderMount& m : mounts) {
    out.push_back({{"folder_id", m.folderId}, {"source", m.source}, {"target", m.target}, {"read_only", m.readOnly}});
  }
  return out;
}

Result<std::vector<FolderMount>> readMounts(const json& list, const std::string& where) {
  if (list.size() > kMaxFolderMounts) {
    return fail(ErrorCode::InvalidArgument, where + ": at most " + std::to_string(kMaxFolderMounts) + " mounts");
  }
  std::vector<FolderMount> out;
  for (const json& item : list) {
    if (!item.is_object()) return fail(ErrorCode::InvalidArgument, where + ": expected objects");
    Reader r(item, where + "[]");
    FolderMount m;
    m.folderId = r.string("folder_id");
    m.source = r.string("source");
    m.target = r.string("target");
    m.readOnly = r.boolean("read_only");
    if (!r.ok()) return r.failure();
    if (m.source.empty() || m.source.front() != '/') {
      return fail(ErrorCode::InvalidArgument, where + ".source: '" + m.source + "' is not an absolute path");
    }
    if (!isMountTarget(m.target)) {
      return fail(ErrorCode::InvalidArgument, where + ".target: '" + m.target + "' is not a path below " +
                                                  std::string(kMountTargetRoot));
    }
    for (const FolderMount& before : out) {
      if (before.target == m.target) {
        return fail(ErrorCode::InvalidArgument, where + ": two mounts at " + m.target);
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

bool isMountTarget(std::string_view target) {
  if (target.size() > 1024 || target.size() <= kMountTargetRoot.size() + 1) return false;
  if (target.substr(0, kMountTargetRoot.size()) != kMountTargetRoot || target[kMountTargetRoot.size()] != '/') {
    return false;
  }
  for (unsigned char c : target) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  std::string_view rest = target.substr(kMountTargetRoot.size() + 1);
  while (true) {
    const std::size_t slash = rest.find('/');
    const std::string_view name = rest.substr(0, slash);
    if (name.empty() || name == "." || name == "..") return false;
    if (slash == std::string_view::npos) return true;
    rest.remove_prefix(slash + 1);
  }
}

std::string CreateSessionRequest::toJson() const {
  json out{{"protocol", kVersion}, {"session_id", sessionId}, {"command", command},
           {"env", env},             {"slots", slotsJson(slots)}};
  if (owner) out["owner"] = {{"uid", owner->uid}, {"gid", owner->gid}, {"name", owner->name}};
  if (image) {
    out["image"] = *image;
    out["pull_policy"] = pullPolicyName(pullPolicy);
  }
  if (openStdin || tty) out["stdin"] = true;
  if (tty) out["tty"] = true;
  if (!servicePorts.empty()) out["service_ports"] = servicePortsJson(servicePorts);
  if (!mounts.empty()) out["mounts"] = mountsJson(mounts);
  return out.dump();
}

namespace {

Result<SessionOwner> readOwner(const json& value) {
  if (!value.is_object()) return fail(ErrorCode::InvalidArgument, "create-session.owner: expected an object");
  Reader r(value, "create-session.owner");
  SessionOwner owner;
  const std::uint64_t uid = r.unsignedInteger("uid");
  const std::uint64_t gid = r.unsignedInteger("gid");
  owner.name = r.string("name");
  if (!r.ok()) return r.failure();
  if (uid > kMaxOwnerId || gid > kMaxOwnerId) {
    return fail(ErrorCode::InvalidArgument, "create-session.owner: uid and gid must be at most 4294967294");
  }
  if (!isOwnerName(owner.name)) {
    return fail(ErrorCode::InvalidArgument,
                "create-session.owner.name: use 1 to 64 letters, digits, '.', '-', '_' or '@'");
  }
  owner.uid = static_cast<std::uint32_t>(uid);
  owner.gid = static_cast<std::uint32_t>(gid);
  return owner;
}

}  // namespace

std::string RuntimeInventory::toJson() const {
  return json{{"runtimes", runtimesJson(runtimes)}, {"images", imagesJson(images)}}.dump();
}

Result<RuntimeInventory> RuntimeInventory::fromJson(std::string_view text) {
  auto document = parseDocument(text, "runtime-inventory", false);
  if (!document) return Failure{document.error()};
  Reader r(*document, "runtime-inventory");
  AgentState state;
  readRuntimes(*document, r, state);
  if (!r.ok()) return r.failure();
  return RuntimeInventory{std::move(state.runtimes), std::move(state.images)};
}

Result<CreateSessionRequest> CreateSessionRequest::fromJson(std::string_view text) {
  auto document = parseDocument(text, "create-session", true);
  if (!document) return Failure{document.error()};
  Reader r(*document, "create-session");
  CreateSessionRequest request;
  request.sessionId = r.string("session_id");
  const json* command = r.array("command");
  request.env = r.stringMap("env");
  request.slots = r.slots("slots", false);
  if (r.has("image")) request.image = r.string("image");
  const std::string pullPolicy = r.has("pull_policy") ? r.string("pull_policy") : "never";
  request.tty = r.boolean("tty");
  request.openStdin = r.boolean("stdin") || request.tty;
  const json* services = r.array("service_ports", false);
  const json* mounts = r.array("mounts", false);
  if (!r.ok()) return r.failure();
  if (services != nullptr) {
    auto read = readServicePorts(*services, "create-session.service_ports");
    if (!read) return Failure{read.error()};
    request.servicePorts = std::move(*read);
  }
  if (mounts != nullptr) {
    auto read = readMounts(*mounts, "create-session.mounts");
    if (!read) return Failure{read.error()};
    request.mounts = std::move(*read);
  }
  if (request.image && !isImageReference(*request.image)) {
    return fail(ErrorCode::InvalidArgument, "create-session.image: '" + *request.image + "' is not an image reference");
  }
  auto policy = parsePullPolicy(pullPolicy);
  if (!policy) return fail(ErrorCode::InvalidArgument, "create-session.pull_policy: " + policy.error().message);
  request.pullPolicy = *policy;
  if (!isSessionId(request.sessionId)) {
    return fail(ErrorCode::InvalidArgument, "create-session.session_id: use 1 to 128 letters, digits, '-' or '_'");
  }
  for (const auto& arg : *command) {
    if (!arg.is_string()) return fail(ErrorCode::InvalidArgument, "create-session.command: expected strings");
    request.command.push_back(arg.get<std::string>());
  }
  if (request.command.empty() && !request.image) {
    return fail(ErrorCode::InvalidArgument, "create-session.command: empty (only a session with an image may leave it out)");
  }
  if (auto owner = document->find("owner"); owner != document->end() && !owner->is_null()) {
    auto read = readOwner(*owner);
    if (!read) return Failure{read.error()};
    request.owner = std::move(*read);
  }
  for (const auto& [slot, amount] : request.slots) {
    if (amount.isNegative()) {
      return fail(ErrorCode::InvalidArgument, "create-session.slots." + slot.str() + ": negative amount " + amount.toString());
    }
  }
  return request;
}

std::string SessionInfo::toJson() const {
  json out{{"id", id},
           {"state", sessionStateName(state)},
           {"allocation", allocationJson(allocation)},
           {"pid", pid},
           {"started_at_ms", startedAtMillis},
           {"ended_at_ms", endedAtMillis}};
  if (exitCode) out["exit_code"] = *exitCode;
  if (!reason.empty()) out["reason"] = reason;
  if (!services.empty()) out["services"] = servicePortsJson(services);
  return out.dump();
}

Result<SessionInfo> SessionInfo::fromJson(std::string_view text) {
  auto document = parseDocument(text, "session", false);
  if (!document) return Failure{document.error()};
  Reader r(*document, "session");
  SessionInfo info;
  info.id = r.string("id");
  auto state = parseSessionState(r.string("state"));
  info.pid = r.integer("pid", false);
  info.startedAtMillis = r.integer("started_at_ms", false);
  info.endedAtMillis = r.integer("ended_at_ms", false);
  if (r.has("exit_code")) info.exitCode = r.exitCode("exit_code");
  info.reason = r.string("reason", false);
  const json* allocation = r.object("allocation", false);
  const json* services = r.array("services", false);
  if (!r.ok()) return r.failure();
  if (!state) return Failure{state.error()};
  info.state = *state;
  if (services != nullptr) {
    auto read = readServicePorts(*services, "session.services");
    if (!read) return Failure{read.error()};
    info.services = std::move(*read);
  }
  if (allocation != nullptr) {
    auto parsed = readAllocation(*allocation, "session.allocation");
    if (!parsed) return Failure{parsed.error()};
    info.allocation = std::move(*parsed);
  }
  return info;
}

std::string ApiError::toJson() const { return json{{"type", type}, {"title", title}, {"detail", detail}}.dump(); }

Result<ApiError> ApiError::fromJson(std::string_view text) {
  auto document = parseDocument(text, "error", false);
  if (!document) return Failure{document.error()};
  Reader r(*document, "error");
  ApiError error{r.string("type"), r.string("title"), r.string("detail", false)};
  if (!r.ok()) return r.failure();
  return error;
}

std::string allocationToJson(const DeviceAllocation& allocation) { return allocationJson(allocation).dump(); }

Result<DeviceAllocation> allocationFromJson(std::string_view text) {
  auto document = parseJson(text);
  if (!document) return fail(ErrorCode::InvalidArgument, "allocation: " + document.error().message);
  return readAllocation(*document, "allocation");
}

}  // namespace bai::protocol
