#include "mock_config.hpp"

#include "bounded_json.hpp"
#include "config_reader.hpp"

#include <bai/accelerator.h>
#include <bai/plugin.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <unordered_map>

namespace bai::mock {
namespace {

using namespace std::chrono_literals;
using ValueType::Amount, ValueType::Bytes, ValueType::Count, ValueType::Duration, ValueType::Flag, ValueType::List,
    ValueType::String, ValueType::Strings, ValueType::Table, ValueType::Tables;

// ---- The declared keys: the single description of the format --------------------------

constexpr KeySpec kTopLevelKeys[] = {
    keySpec("key", String, true, "", "device key, the prefix of every slot: \"cuda\", \"rocm\", \"acme\""),
    keySpec("mode", String, false, "discrete", "\"discrete\": <key>.device, one per GPU; \"fractional\": <key>.shares"),
    keySpec("strategy", String, false, "evenly", "how the agent spreads a request over devices: \"evenly\" or \"fill\""),
    keySpec("quantum_size", Amount, false, "0.01", "fractional mode: the smallest share a session can get"),
    keySpec("unit_mem", Bytes, false, "2g", "fractional mode: the memory of one share"),
    keySpec("unit_proc", Count, false, "8", "fractional mode: the SMs of one share"),
    keySpec("device_mask", Strings, false, "", "ids or uuids of devices to hide"),
    keySpec("attributes", Table, false, "", "string facts reported in describe's extra_info (driver version...)"),
    keySpec("devices", Tables, false, "", "the GPUs"),
    keySpec("faults", Table, false, "", "fault injection for tests of the host"),
    keySpec("session_extra", Table, false, "", "limits, mounts, devices and cdi_devices added to every prepare_session answer"),
};

constexpr KeySpec kDeviceKeys[] = {
    keySpec("id", String, false, "{i}", "device id; {i} stands for the GPU's position in the whole list"),
    keySpec("uuid", String, true, "", "unique id the session sees; needs {i} when count > 1"),
    keySpec("model", String, true, "", "model name"),
    keySpec("count", Count, false, "1", "how many GPUs this entry describes (compact configs)"),
    keySpec("numa_node", Count, false, "0", "NUMA node the GPU is attached to"),
    keySpec("sm_count", Count, true, "", "processing units (SMs, CUs)"),
    keySpec("memory", Bytes, true, "", "device memory: \"40g\" or bytes"),
    keySpec("pci_bus", String, false, "", "PCI address; generated from the position when absent"),
    keySpec("mig", Flag, false, "false", "MIG mode: the GPU is offered only as its slices"),
    keySpec("mig_slices", Tables, false, "", "MIG slices of a GPU with mig = true"),
    keySpec("utilization", Amount, false, "0", "percent reported by node_measures"),
    keySpec("memory_used", Bytes, false, "0", "bytes reported in use by node_measures"),
    keySpec("device_node", String, false, "", "absolute path of the GPU's device node, {i} allowed: \"/dev/mock{i}\""),
};

constexpr KeySpec kMigSliceKeys[] = {
    keySpec("profile", String, true, "", "MIG profile: \"1g.10gb\" gives slot <key>.device:1g.10gb-mig"),
    keySpec("count", Count, false, "1", "how many slices of this profile"),
    keySpec("memory", Bytes, false, "", "memory of one slice"),
    keySpec("sm_count", Count, false, "", "SMs of one slice"),
};

constexpr KeySpec kFaultKeys[] = {
    keySpec("fail", Strings, false, "", "calls that return BAI_ERR_UNAVAILABLE, e.g. [\"list_devices\"]"),
    keySpec("delay_ms", Table, false, "", "milliseconds slept at the start of a call: {list_devices = 300, all = 5}"),
    keySpec("devices", Tables, false, "", "health faults of single devices"),
};

constexpr KeySpec kDeviceFaultKeys[] = {
    keySpec("device", String, true, "", "id or uuid of the device"),
    keySpec("unhealthy_after", Duration, false, "", "seconds after create when it turns unhealthy"),
    keySpec("recover_after", Duration, false, "", "seconds after create when it is healthy again"),
    keySpec("gone_after", Duration, false, "", "seconds after create when it disappears for good"),
    keySpec("reason", String, false, "", "the reason health reports"),
};

constexpr KeySpec kSessionExtraKeys[] = {
    keySpec("limits", Table, false, "", "added to the answer's limits as written (any key, any value)"),
    keySpec("mounts", Tables, false, "", "bind mounts appended to the answer's mounts"),
    keySpec("devices", List, false, "", "device paths or {path, type, major, minor, access} tables appended as written"),
    keySpec("cdi_devices", List, false, "", "CDI device names (\"vendor.com/class=name\") appended as written"),
};

constexpr KeySpec kMountKeys[] = {
    keySpec("source", String, true, "", "host path"),
    keySpec("target", String, true, "", "path in the session"),
    keySpec("read_only", Flag, false, "false", "mounted read-only"),
};

struct CallName {
  Call call;
  std::string_view name;
};

// Each name sits next to its enumerator; the check below lets the table be indexed by Call.
constexpr CallName kCallNames[] = {
    {Call::Create, "create"},
    {Call::Destroy, "destroy"},
    {Call::Describe, "describe"},
    {Call::ListDevices, "list_devices"},
    {Call::SlotTypes, "slot_types"},
    {Call::AllocMapSpec, "alloc_map_spec"},
    {Call::PrepareSession, "prepare_session"},
    {Call::ReleaseSession, "release_session"},
    {Call::NodeMeasures, "node_measures"},
    {Call::SessionMeasures, "session_measures"},
    {Call::Health, "health"},
};

constexpr bool indexedByCall() {
  for (std::size_t i = 0; i < std::size(kCallNames); ++i) {
    if (static_cast<std::size_t>(kCallNames[i].call) != i) return false;
  }
  return std::size(kCallNames) == kCallCount;
}
static_assert(indexedByCall(), "kCallNames must list every Call in enum order");

// [faults.delay_ms] accepts "all" and every call name.
constexpr std::array<KeySpec, kCallCount + 1> delayKeys() {
  std::array<KeySpec, kCallCount + 1> keys{};
  keys[0] = keySpec("all", Duration, false, "", "milliseconds slept at the start of every call without its own entry");
  for (std::size_t i = 0; i < kCallCount; ++i) {
    keys[i + 1] = keySpec(kCallNames[i].name, Duration, false, "", "milliseconds slept at the start of this call");
  }
  return keys;
}
constexpr auto kDelayKeys = delayKeys();

constexpr std::size_t kMaxKeyLength = BAI_PLUGIN_KEY_SIZE - 1;
constexpr std::size_t kMaxSlotNameLength = 64;   // common.schema.json slotName
constexpr std::size_t kMaxDeviceIdLength = 128;  // common.schema.json deviceId
constexpr std::int64_t kMaxDevices = 65536;      // catches a runaway `count`, far above any node
constexpr std::string_view kIndexPlaceholder = "{i}";

// ---- Where the settings come from -------------------------------------------------------

[[noreturn]] void failSettings(const std::string& message) {
  throw plugin::StatusError(BAI_ERR_INVALID_ARGUMENT, "mock config: " + message);
}

// Read whole and parsed from memory: cheaper than toml++'s stream reader, and a file that
// cannot be opened gets errno's reason.
std::string readFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) failSettings(path + ": cannot read: " + std::strerror(errno));
  std::string text;
  char buffer[16384];
  for (std::size_t got; (got = std::fread(buffer, 1, sizeof buffer, file)) > 0;) text.append(buffer, got);
  bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) failSettings(path + ": cannot read");
  return text;
}

toml::table readTomlFile(const std::string& path) {
  std::string text = readFile(path);
  try {
    return toml::parse(text, path);
  } catch (const toml::parse_error& error) {
    failConfig(error.source(), "TOML syntax", error.description());
  }
}

std::unique_ptr<toml::node> tomlFromJson(const nlohmann::json& value, const std::string& path) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::object: {
      auto table = std::make_unique<toml::table>();
      for (const auto& [key, item] : value.items())
        table->insert_or_assign(key, std::move(*tomlFromJson(item, path + "." + key)));
      return table;
    }
    case Type::array: {
      auto array = std::make_unique<toml::array>();
      for (std::size_t i = 0; i < value.size(); ++i) {
        array->push_back(std::move(*tomlFromJson(value[i], path + "[" + std::to_string(i) + "]")));
      }
      return array;
    }
    case Type::string:
      return std::make_unique<toml::value<std::string>>(value.get<std::string>());
    case Type::boolean:
      return std::make_unique<toml::value<bool>>(value.get<bool>());
    case Type::number_integer:
      return std::make_unique<toml::value<std::int64_t>>(value.get<std::int64_t>());
    case Type::number_unsigned:
      if (value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        failSettings("inline config: " + path + ": number too large");
      }
      return std::make_unique<toml::value<std::int64_t>>(value.get<std::int64_t>());
    case Type::number_float:
      return std::make_unique<toml::value<double>>(value.get<double>());
    default:
      failSettings("inline config: " + path + ": null and binary values are not settings");
  }
}

// The file's top-level table with every inline key laid over it: inline settings win, so
// one sample file can serve several tests or nodes (a different device_mask, faults...).
toml::table mergedSettings(std::string_view configJson, std::string& source) {
  nlohmann::json config = internal::parseBoundedJson(configJson).document;  // null when refused
  if (!config.is_object()) failSettings("the plugin config must be a JSON object");
  toml::table settings;
  source = "inline config";
  if (auto file = config.find("config_file"); file != config.end()) {
    if (!file->is_string() || file->get<std::string>().empty()) failSettings("config_file: expected a file path");
    source = file->get<std::string>();
    settings = readTomlFile(source);
  }
  for (const auto& [key, value] : config.items()) {
    if (key != "config_file") settings.insert_or_assign(key, std::move(*tomlFromJson(value, key)));
  }
  return settings;
}

// ---- Top-level settings ----------------------------------------------------------------

bool isKeyName(std::string_view text) {
  if (text.empty() || text.size() > kMaxKeyLength || text.front() < 'a' || text.front() > 'z') return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; });
}

bool isMigProfile(std::string_view text) {
  auto allowed = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (text.empty() || !allowed(text.front())) return false;
  return std::all_of(text.begin(), text.end(),
                     [&](char c) { return allowed(c) || c == '.' || c == '_' || c == '+' || c == '-'; });
}

// Ids and uuids end up in comma-separated env vars of "<uuid>:<bytes>" pairs.
bool isDeviceName(std::string_view text) {
  if (text.empty() || text.size() > kMaxDeviceIdLength) return false;
  return std::none_of(text.begin(), text.end(),
                      [](char c) { return c == ',' || c == ':' || static_cast<unsigned char>(c) <= ' '; });
}

void readAllocationSettings(const TableReader& root, MockConfig& config) {
  config.key = root.string("key");
  if (!isKeyName(config.key)) {
    root.fail("key", "\"" + config.key +
                         "\" is not a device key: lower-case letters, digits, '_' and '-', "
                         "starting with a letter, at most 31 characters");
  }
  std::string mode = root.string("mode");
  if (mode != "discrete" && mode != "fractional") root.fail("mode", "expected \"discrete\" or \"fractional\"");
  config.mode = mode == "discrete" ? AllocationMode::Discrete : AllocationMode::Fractional;
  std::string strategy = root.string("strategy");
  if (strategy != "evenly" && strategy != "fill") root.fail("strategy", "expected \"evenly\" or \"fill\"");
  config.strategy = strategy == "evenly" ? Strategy::Evenly : Strategy::Fill;

  if (config.mode == AllocationMode::Discrete) {
    for (std::string_view key : {"quantum_size", "unit_mem", "unit_proc"}) {
      if (root.has(key)) root.fail(key, "applies only to mode = \"fractional\"");
    }
  }
  config.quantum = root.amount("quantum_size");
  config.unitMem = root.bytes("unit_mem");
  config.unitProc = root.count("unit_proc");
  if (config.quantum.isZero()) root.fail("quantum_size", "must be greater than 0");
  if (config.unitMem == 0) root.fail("unit_mem", "must be greater than 0");
  if (config.unitProc == 0) root.fail("unit_proc", "must be greater than 0");
}

// Free-form: the keys are data, so they are not declared; only string values make sense.
void readAttributes(const TableReader& root, MockConfig& config) {
  const toml::node* attributes = root.raw().get("attributes");
  if (attributes == nullptr) return;
  for (auto&& [key, node] : *attributes->as_table()) {
    if (!node.is_string()) {
      failConfig(node.source(), root.keyPath("attributes." + std::string(key.str())), "expected a string");
    }
    config.attributes.emplace_back(std::string(key.str()), node.as_string()->get());
  }
}

// ---- Devices ------------------------------------------------------------------------------

std::string withIndex(std::string text, std::size_t index) {
  std::string number = std::to_string(index);
  for (std::size_t at = text.find(kIndexPlaceholder); at != std::string::npos; at = text.find(kIndexPlaceholder, at)) {
    text.replace(at, kIndexPlaceholder.size(), number);
    at += number.size();
  }
  return text;
}

// A made-up but unique PCI address per GPU position: 32 devices per bus, 256 buses per domain.
std::string generatedPciBus(std::size_t index) {
  char text[32];
  std::snprintf(text, sizeof text, "%04zx:%02zx:%02zx.0", index / 8192, (index / 32) % 256, index % 32);
  return text;
}

struct SliceSpec {
  std::string profile;
  std::int64_t count = 1;
  std::optional<std::uint64_t> memory;
  std::optional<std::int64_t> smCount;
};

// Builds the device list from [[devices]] entries; every id and uuid names one device only.
class DeviceBuilder {
 public:
  explicit DeviceBuilder(MockConfig& config) : config_(config) {}

  void addEntry(const TableReader& entry) {
    std::int64_t count = entry.count("count");
    if (count < 1) entry.fail("count", "must be at least 1");
    if (count > kMaxDevices - static_cast<std::int64_t>(gpuCount_)) entry.fail("count", "more than 65536 devices");
    for (std::string_view key : {"uuid", "id"}) {
      if (count > 1 && entry.has(key) && entry.string(key).find(kIndexPlaceholder) == std::string::npos) {
        entry.fail(key, "needs {i} (the GPU's position) when count > 1, so that every GPU gets its own");
      }
    }
    MockDevice gpu = gpuTemplate(entry);
    std::vector<SliceSpec> slices = sliceSpecs(entry, gpu);
    for (std::int64_t i = 0; i < count; ++i) addGpu(entry, gpu, slices);
  }

 private:
  MockDevice gpuTemplate(const TableReader& entry) const {
    MockDevice gpu;
    gpu.model = entry.string("model");
    gpu.numaNode = entry.count("numa_node");
    gpu.processingUnits = entry.count("sm_count");
    gpu.memory = entry.bytes("memory");
    gpu.migEnabled = entry.flag("mig");
    gpu.utilization = entry.amount("utilization");
    gpu.memoryUsed = entry.bytes("memory_used");
    if (*gpu.processingUnits < 1) entry.fail("sm_count", "must be at least 1");
    if (*gpu.memory == 0) entry.fail("memory", "must be greater than 0");
    if (gpu.utilization > 100) entry.fail("utilization", "is a percentage: at most 100");
    if (gpu.memoryUsed > *gpu.memory) entry.fail("memory_used", "is more than memory");
    if (!gpu.migEnabled) assignMainSlot(entry, gpu);
    return gpu;
  }

  void assignMainSlot(const TableReader& entry, MockDevice& gpu) const {
    if (config_.mode == AllocationMode::Discrete) {
      gpu.slot = config_.key + ".device";
      gpu.capacity = 1;
      return;
    }
    gpu.slot = config_.key + ".shares";
    Quantity byMemory = Quantity::ratioFloor(*gpu.memory, config_.unitMem);
    Quantity byProcessors = Quantity::ratioFloor(*gpu.processingUnits, config_.unitProc);
    gpu.capacity = std::min(byMemory, byProcessors);
    if (gpu.capacity < config_.quantum) {
      entry.failTable("holds " + gpu.capacity.toString() +
                      " shares (min(memory / unit_mem, sm_count / unit_proc)), "
                      "less than quantum_size " +
                      config_.quantum.toString());
    }
  }

  std::vector<SliceSpec> sliceSpecs(const TableReader& entry, const MockDevice& gpu) const {
    std::vector<SliceSpec> specs;
    for (const TableReader& slice : entry.tables("mig_slices", kMigSliceKeys)) {
      SliceSpec spec{slice.string("profile"), slice.count("count"), std::nullopt, std::nullopt};
      if (!isMigProfile(spec.profile)) slice.fail("profile", "expected lower-case letters, digits and . _ + -");
      if ((config_.key + ".device:" + spec.profile + "-mig").size() > kMaxSlotNameLength) {
        slice.fail("profile", "makes a slot name longer than 64 characters");
      }
      if (spec.count < 1) slice.fail("count", "must be at least 1");
      if (slice.has("memory")) spec.memory = slice.bytes("memory");
      if (slice.has("sm_count")) spec.smCount = slice.count("sm_count");
      specs.push_back(std::move(spec));
    }
    if (gpu.migEnabled && specs.empty()) entry.fail("mig_slices", "missing: a GPU with mig = true needs its slices");
    if (!gpu.migEnabled && !specs.empty()) entry.fail("mig_slices", "given but mig is not true");
    return specs;
  }

  void addGpu(const TableReader& entry, MockDevice gpu, const std::vector<SliceSpec>& slices) {
    std::size_t position = gpuCount_++;
    gpu.id = withIndex(entry.string("id"), position);
    gpu.uuid = withIndex(entry.string("uuid"), position);
    gpu.pciBus = entry.has("pci_bus") ? withIndex(entry.string("pci_bus"), position) : generatedPciBus(position);
    if (entry.has("device_node")) {
      gpu.deviceNode = withIndex(entry.string("device_node"), position);
      if (gpu.deviceNode.empty() || gpu.deviceNode.front() != '/') entry.fail("device_node", "\"" + gpu.deviceNode + "\" is not an absolute path");
    }
    checkDeviceName(entry, "id", gpu.id);
    checkDeviceName(entry, "uuid", gpu.uuid);
    claimName(entry, "id", gpu.id);
    if (gpu.uuid != gpu.id) claimName(entry, "uuid", gpu.uuid);
    std::size_t parent = config_.devices.size();
    config_.devices.push_back(std::move(gpu));
    std::size_t sliceNumber = 0;
    for (const SliceSpec& spec : slices) {
      for (std::int64_t i = 0; i < spec.count; ++i) addSlice(entry, parent, spec, sliceNumber++);
    }
  }

  // Named like NVIDIA's MIG device names: "MIG-<GPU uuid>/<GPU instance>/<compute instance>".
  void addSlice(const TableReader& entry, std::size_t parent, const SliceSpec& spec, std::size_t number) {
    const MockDevice& gpu = config_.devices[parent];
    MockDevice slice;
    slice.id = "MIG-" + gpu.uuid + "/" + std::to_string(number) + "/0";
    slice.uuid = slice.id;
    slice.model = gpu.model + " MIG " + spec.profile;
    slice.pciBus = gpu.pciBus;
    slice.deviceNode = gpu.deviceNode;  // a MIG slice is opened through its GPU's node
    slice.numaNode = gpu.numaNode;
    slice.memory = spec.memory;
    slice.processingUnits = spec.smCount;
    slice.parent = parent;
    slice.migProfile = spec.profile;
    slice.slot = config_.key + ".device:" + spec.profile + "-mig";
    slice.capacity = 1;
    checkDeviceName(entry, "uuid", slice.id);
    claimName(entry, "uuid", slice.id);
    config_.devices.push_back(std::move(slice));
  }

  static void checkDeviceName(const TableReader& entry, std::string_view key, const std::string& name) {
    if (!isDeviceName(name)) entry.fail(key, "\"" + name + "\": 1 to 128 characters without ',', ':' or spaces");
  }

  void claimName(const TableReader& entry, std::string_view key, const std::string& name) {
    auto [it, added] = names_.emplace(name, config_.devices.size());
    if (!added) {
      entry.fail(key,
                 "\"" + name + "\" is already the id or uuid of device \"" + config_.devices[it->second].id + "\"");
    }
  }

  MockConfig& config_;
  std::unordered_map<std::string, std::size_t> names_;  // every id and uuid → device index
  std::size_t gpuCount_ = 0;
};

// Index of the device whose id or uuid is `name`.
std::optional<std::size_t> findDevice(const std::vector<MockDevice>& devices, std::string_view name) {
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (devices[i].id == name || devices[i].uuid == name) return i;
  }
  return std::nullopt;
}

// Removes the masked devices (a masked GPU takes its MIG slices along) and renumbers parents.
void applyDeviceMask(const TableReader& root, MockConfig& config) {
  std::vector<bool> hidden(config.devices.size(), false);
  for (const std::string& name : root.strings("device_mask")) {
    std::optional<std::size_t> index = findDevice(config.devices, name);
    if (!index) root.fail("device_mask", "\"" + name + "\" is not the id or uuid of a device");
    hidden[*index] = true;
  }
  std::vector<MockDevice> visible;
  std::vector<std::size_t> newIndex(config.devices.size());
  for (std::size_t i = 0; i < config.devices.size(); ++i) {
    MockDevice& device = config.devices[i];
    if (device.parent && hidden[*device.parent]) hidden[i] = true;
    if (hidden[i]) {
      config.masked.push_back(device.id);
      continue;
    }
    if (device.parent) device.parent = newIndex[*device.parent];
    newIndex[i] = visible.size();
    visible.push_back(std::move(device));
  }
  config.devices = std::move(visible);
}

// ---- Faults ---------------------------------------------------------------------------------

std::optional<Call> callByName(std::string_view name) {
  for (std::size_t i = 0; i < kCallCount; ++i) {
    if (kCallNames[i].name == name) return kCallNames[i].call;
  }
  return std::nullopt;
}

void readCallFaults(const TableReader& faults, MockConfig& config) {
  for (const std::string& name : faults.strings("fail")) {
    std::optional<Call> call = callByName(name);
    if (!call || *call == Call::Destroy) faults.fail("fail", "\"" + name + "\" is not a call that can fail");
    config.faults.fail[static_cast<std::size_t>(*call)] = true;
  }
  TableReader delays = faults.table("delay_ms", kDelayKeys);
  std::optional<std::chrono::nanoseconds> all;
  if (delays.has("all")) all = delays.duration("all", 1ms);
  for (std::size_t i = 0; i < kCallCount; ++i) {
    std::string_view name = kCallNames[i].name;
    config.faults.delay[i] = delays.has(name) ? delays.duration(name, 1ms) : all;
  }
}

void readHealthFaults(const TableReader& faults, MockConfig& config) {
  std::vector<bool> taken(config.devices.size(), false);
  for (const TableReader& entry : faults.tables("devices", kDeviceFaultKeys)) {
    std::string name = entry.string("device");
    std::optional<std::size_t> index = findDevice(config.devices, name);
    if (!index) entry.fail("device", "\"" + name + "\" is not the id or uuid of a visible device");
    if (taken[*index]) entry.fail("device", "\"" + name + "\" has faults already; give them in one entry");
    taken[*index] = true;
    HealthFault& fault = config.devices[*index].fault;
    if (entry.has("unhealthy_after")) fault.unhealthyAfter = entry.duration("unhealthy_after", 1s);
    if (entry.has("recover_after")) fault.recoverAfter = entry.duration("recover_after", 1s);
    if (entry.has("gone_after")) fault.goneAfter = entry.duration("gone_after", 1s);
    if (entry.has("reason")) fault.reason = entry.string("reason");
    if (fault.recoverAfter && (!fault.unhealthyAfter || *fault.recoverAfter <= *fault.unhealthyAfter)) {
      entry.fail("recover_after", "needs an earlier unhealthy_after");
    }
    if (!fault.unhealthyAfter && !fault.goneAfter) entry.failTable("needs unhealthy_after or gone_after");
  }
}

// ---- Extra payload for tests of the host ----------------------------------------------------

nlohmann::json jsonFromToml(const toml::node& node, const std::string& path) {
  if (const toml::table* table = node.as_table()) {
    nlohmann::json object = nlohmann::json::object();
    for (auto&& [key, item] : *table) object[std::string(key.str())] = jsonFromToml(item, path + "." + std::string(key.str()));
    return object;
  }
  if (const toml::array* array = node.as_array()) {
    nlohmann::json list = nlohmann::json::array();
    for (std::size_t i = 0; i < array->size(); ++i) list.push_back(jsonFromToml(*array->get(i), path + "[" + std::to_string(i) + "]"));
    return list;
  }
  if (const auto* text = node.as_string()) return text->get();
  if (const auto* integer = node.as_integer()) return integer->get();
  if (const auto* number = node.as_floating_point()) return number->get();
  if (const auto* flag = node.as_boolean()) return flag->get();
  failConfig(node.source(), path, "dates and times are not payload values");
}

// Passed through unchecked beyond its shape: a bad limit key or a missing mount source is
// what the tests that use it want the agent to see.
void readSessionExtra(const TableReader& root, MockConfig& config) {
  if (!root.has("session_extra")) return;
  TableReader extra = root.table("session_extra", kSessionExtraKeys);
  nlohmann::json document = nlohmann::json::object();
  for (const TableReader& mount : extra.tables("mounts", kMountKeys)) {
    document["mounts"].push_back({{"source", mount.string("source")},
                                  {"target", mount.string("target")},
                                  {"read_only", mount.flag("read_only")}});
  }
  for (const char* key : {"limits", "devices", "cdi_devices"}) {
    if (const toml::node* node = extra.raw().get(key)) document[key] = jsonFromToml(*node, extra.keyPath(key));
  }
  config.sessionExtra = document.dump();
}

}  // namespace

std::string_view callName(Call call) { return kCallNames[static_cast<std::size_t>(call)].name; }

std::optional<Quantity> parseAmount(std::string_view text) {
  constexpr Quantity kLargest = 1'000'000'000'000'000'000;
  Result<Quantity> amount = Quantity::parse(text);
  if (!amount || amount->isNegative() || *amount > kLargest) return std::nullopt;  // Infinity too
  return *amount;
}

MockConfig loadMockConfig(std::string_view configJson) {
  MockConfig config;
  // An agent that loads every plugin in its path passes "{}" when it has no
  // [plugins.mock] table: offer nothing rather than fail, as a plugin without its
  // hardware does.
  const nlohmann::json given = internal::parseBoundedJson(configJson).document;
  if (given.is_object() && given.empty()) {
    config.key = "mock";
    config.source = kUnconfigured;
    config.quantum = Quantity::parse("0.01").value();
    return config;
  }
  toml::table settings = mergedSettings(configJson, config.source);
  TableReader root(settings, "", kTopLevelKeys);
  readAllocationSettings(root, config);
  readAttributes(root, config);
  DeviceBuilder builder(config);
  for (const TableReader& entry : root.tables("devices", kDeviceKeys)) builder.addEntry(entry);
  applyDeviceMask(root, config);
  TableReader faults = root.table("faults", kFaultKeys);
  readCallFaults(faults, config);
  readHealthFaults(faults, config);
  readSessionExtra(root, config);
  return config;
}

}  // namespace bai::mock
