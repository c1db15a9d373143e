#include "nvml.hpp"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>

namespace bai::nvml {

// One list names each symbol once; it declares the pointer and drives its lookup.
#define BAI_NVML_REQUIRED(X) \
  X(nvmlInit_v2)             \
  X(nvmlShutdown)            \
  X(nvmlDeviceGetCount_v2)   \
  X(nvmlDeviceGetHandleByIndex_v2) \
  X(nvmlDeviceGetUUID)
#define BAI_NVML_OPTIONAL(X)           \
  X(nvmlErrorString)                   \
  X(nvmlSystemGetDriverVersion)        \
  X(nvmlDeviceGetName)                 \
  X(nvmlDeviceGetMemoryInfo)           \
  X(nvmlDeviceGetPciInfo_v3)           \
  X(nvmlDeviceGetNumGpuCores)          \
  X(nvmlDeviceGetUtilizationRates)     \
  X(nvmlDeviceGetMigMode)              \
  X(nvmlDeviceGetMaxMigDeviceCount)    \
  X(nvmlDeviceGetMigDeviceHandleByIndex) \
  X(nvmlDeviceGetMinorNumber)          \
  X(nvmlDeviceGetGpuInstanceId)        \
  X(nvmlDeviceGetComputeInstanceId)    \
  X(nvmlEventSetCreate)                \
  X(nvmlDeviceRegisterEvents)          \
  X(nvmlEventSetWait_v2)               \
  X(nvmlEventSetFree)

struct Library::Api {
#define BAI_NVML_MEMBER(name) decltype(&::name) name = nullptr;
  BAI_NVML_REQUIRED(BAI_NVML_MEMBER)
  BAI_NVML_OPTIONAL(BAI_NVML_MEMBER)
#undef BAI_NVML_MEMBER
};

namespace {

template <class Fn>
bool resolve(void* handle, const char* name, Fn& out) {
  out = reinterpret_cast<Fn>(dlsym(handle, name));
  return out != nullptr;
}

std::string fromBuffer(const char* buffer, std::size_t size) { return std::string(buffer, ::strnlen(buffer, size)); }

std::string lowerCase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

}  // namespace

Result<std::unique_ptr<Library>> Library::open(const std::string& path) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return fail(ErrorCode::NotFound, "cannot load NVML: " + std::string(why != nullptr ? why : path));
  }
  auto api = std::make_unique<Api>();
  std::vector<std::string> missingRequired, missingOptional;
#define BAI_NVML_RESOLVE_REQUIRED(name) \
  if (!resolve(handle, #name, api->name)) missingRequired.push_back(#name);
#define BAI_NVML_RESOLVE_OPTIONAL(name) \
  if (!resolve(handle, #name, api->name)) missingOptional.push_back(#name);
  BAI_NVML_REQUIRED(BAI_NVML_RESOLVE_REQUIRED)
  BAI_NVML_OPTIONAL(BAI_NVML_RESOLVE_OPTIONAL)
#undef BAI_NVML_RESOLVE_REQUIRED
#undef BAI_NVML_RESOLVE_OPTIONAL
  if (!missingRequired.empty()) {
    std::string names;
    for (const std::string& name : missingRequired) names += (names.empty() ? "" : ", ") + name;
    dlclose(handle);
    return fail(ErrorCode::NotFound, path + " lacks required NVML symbols: " + names + " (driver too old?)");
  }
  nvmlReturn_t status = api->nvmlInit_v2();
  if (status != NVML_SUCCESS) {
    std::string why = api->nvmlErrorString != nullptr ? api->nvmlErrorString(status) : "";
    dlclose(handle);
    return fail(ErrorCode::Internal,
                "nvmlInit_v2 failed: error " + std::to_string(status) + (why.empty() ? "" : " (" + why + ")"));
  }
  return std::unique_ptr<Library>(new Library(handle, std::move(api), std::move(missingOptional)));
}

Library::Library(void* handle, std::unique_ptr<Api> api, std::vector<std::string> missingOptional)
    : handle_(handle), api_(std::move(api)), missingOptional_(std::move(missingOptional)) {}

Library::~Library() {
  if (events_ != nullptr) api_->nvmlEventSetFree(events_);
  api_->nvmlShutdown();
  dlclose(handle_);
}

std::string Library::errorString(nvmlReturn_t code) const {
  const char* text = api_->nvmlErrorString != nullptr ? api_->nvmlErrorString(code) : nullptr;
  return "NVML error " + std::to_string(code) + (text != nullptr ? std::string(" (") + text + ")" : "");
}

std::optional<std::string> Library::driverVersion() const {
  if (api_->nvmlSystemGetDriverVersion == nullptr) return std::nullopt;
  char buffer[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = {};
  if (api_->nvmlSystemGetDriverVersion(buffer, sizeof buffer) != NVML_SUCCESS) return std::nullopt;
  return fromBuffer(buffer, sizeof buffer);
}

std::string Library::loadedFrom() const {
  link_map* map = nullptr;
  if (dlinfo(handle_, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr || map->l_name == nullptr) return "";
  return map->l_name;
}

Result<unsigned> Library::deviceCount() const {
  unsigned count = 0;
  nvmlReturn_t status = api_->nvmlDeviceGetCount_v2(&count);
  if (status != NVML_SUCCESS) return fail(ErrorCode::Internal, "nvmlDeviceGetCount_v2: " + errorString(status));
  return count;
}

Result<std::vector<Gpu>> Library::discover(const std::string& sysfsRoot, std::vector<std::string>& skipped) const {
  auto count = deviceCount();
  if (!count) return Failure{count.error()};
  std::vector<Gpu> gpus;
  for (unsigned index = 0; index < *count; ++index) {
    Gpu gpu;
    gpu.index = index;
    // A GPU that does not answer is skipped, so that it never hides the others.
    nvmlReturn_t status = api_->nvmlDeviceGetHandleByIndex_v2(index, &gpu.handle);
    if (status != NVML_SUCCESS) {
      skipped.push_back("GPU " + std::to_string(index) + ": nvmlDeviceGetHandleByIndex_v2: " + errorString(status));
      continue;
    }
    char text[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    status = api_->nvmlDeviceGetUUID(gpu.handle, text, sizeof text);
    if (status != NVML_SUCCESS) {
      skipped.push_back("GPU " + std::to_string(index) + ": nvmlDeviceGetUUID: " + errorString(status));
      continue;
    }
    gpu.uuid = fromBuffer(text, sizeof text);
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
    if (api_->nvmlDeviceGetName != nullptr && api_->nvmlDeviceGetName(gpu.handle, name, sizeof name) == NVML_SUCCESS) {
      gpu.name = fromBuffer(name, sizeof name);
    }
    nvmlMemory_t memory{};
    if (api_->nvmlDeviceGetMemoryInfo != nullptr && api_->nvmlDeviceGetMemoryInfo(gpu.handle, &memory) == NVML_SUCCESS) {
      gpu.memory = memory.total;
    }
    nvmlPciInfo_t pci{};
    if (api_->nvmlDeviceGetPciInfo_v3 != nullptr && api_->nvmlDeviceGetPciInfo_v3(gpu.handle, &pci) == NVML_SUCCESS) {
      gpu.pciBus = sysfsBusId(fromBuffer(pci.busId, sizeof pci.busId));
      gpu.numaNode = numaNodeOf(sysfsRoot, gpu.pciBus);
    }
    unsigned minor = 0;
    if (api_->nvmlDeviceGetMinorNumber != nullptr && api_->nvmlDeviceGetMinorNumber(gpu.handle, &minor) == NVML_SUCCESS) {
      gpu.minor = minor;
    }
    unsigned cores = 0;
    if (api_->nvmlDeviceGetNumGpuCores != nullptr && api_->nvmlDeviceGetNumGpuCores(gpu.handle, &cores) == NVML_SUCCESS) {
      gpu.cores = cores;
    }
    unsigned current = 0, pending = 0;
    bool migApi = api_->nvmlDeviceGetMigMode != nullptr && api_->nvmlDeviceGetMaxMigDeviceCount != nullptr &&
                  api_->nvmlDeviceGetMigDeviceHandleByIndex != nullptr;
    if (migApi && api_->nvmlDeviceGetMigMode(gpu.handle, &current, &pending) == NVML_SUCCESS &&
        current == NVML_DEVICE_MIG_ENABLE) {
      gpu.migEnabled = true;
      unsigned maxSlices = 0;
      if (api_->nvmlDeviceGetMaxMigDeviceCount(gpu.handle, &maxSlices) != NVML_SUCCESS) maxSlices = 0;
      for (unsigned n = 0; n < maxSlices; ++n) {
        MigSlice slice;
        slice.index = n;
        // Unused slots of the MIG table answer NOT_FOUND: skip them.
        if (api_->nvmlDeviceGetMigDeviceHandleByIndex(gpu.handle, n, &slice.handle) != NVML_SUCCESS) continue;
        char sliceUuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
        if (api_->nvmlDeviceGetUUID(slice.handle, sliceUuid, sizeof sliceUuid) != NVML_SUCCESS) continue;
        slice.uuid = fromBuffer(sliceUuid, sizeof sliceUuid);
        char sliceName[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
        if (api_->nvmlDeviceGetName != nullptr &&
            api_->nvmlDeviceGetName(slice.handle, sliceName, sizeof sliceName) == NVML_SUCCESS) {
          slice.name = fromBuffer(sliceName, sizeof sliceName);
          slice.profile = migProfileOf(slice.name);
        }
        nvmlMemory_t sliceMemory{};
        if (api_->nvmlDeviceGetMemoryInfo != nullptr &&
            api_->nvmlDeviceGetMemoryInfo(slice.handle, &sliceMemory) == NVML_SUCCESS) {
          slice.memory = sliceMemory.total;
        }
        unsigned gi = 0, ci = 0;
        if (api_->nvmlDeviceGetGpuInstanceId != nullptr && api_->nvmlDeviceGetComputeInstanceId != nullptr &&
            api_->nvmlDeviceGetGpuInstanceId(slice.handle, &gi) == NVML_SUCCESS &&
            api_->nvmlDeviceGetComputeInstanceId(slice.handle, &ci) == NVML_SUCCESS) {
          slice.instances = MigInstances{gi, ci};
        }
        gpu.slices.push_back(std::move(slice));
      }
    }
    gpus.push_back(std::move(gpu));
  }
  return gpus;
}

std::optional<std::string> Library::lostReason(nvmlDevice_t device, const std::string& uuid) const {
  char text[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
  nvmlReturn_t status = api_->nvmlDeviceGetUUID(device, text, sizeof text);
  if (status == NVML_SUCCESS) {
    if (fromBuffer(text, sizeof text) == uuid) return std::nullopt;
    return "the device now answers as " + fromBuffer(text, sizeof text);
  }
  if (status == NVML_ERROR_GPU_IS_LOST || status == NVML_ERROR_NOT_FOUND || status == NVML_ERROR_INVALID_ARGUMENT) {
    return "the GPU is gone: " + errorString(status);
  }
  return std::nullopt;  // a transient error says nothing about presence
}

Usage Library::usage(nvmlDevice_t device) const {
  Usage usage;
  nvmlUtilization_t utilization{};
  if (api_->nvmlDeviceGetUtilizationRates != nullptr &&
      api_->nvmlDeviceGetUtilizationRates(device, &utilization) == NVML_SUCCESS) {
    usage.utilizationPercent = utilization.gpu;
  }
  nvmlMemory_t memory{};
  if (api_->nvmlDeviceGetMemoryInfo != nullptr && api_->nvmlDeviceGetMemoryInfo(device, &memory) == NVML_SUCCESS) {
    usage.memoryUsed = memory.used;
  }
  return usage;
}

Result<void> Library::watchXids(const std::vector<nvmlDevice_t>& devices) {
  if (api_->nvmlEventSetCreate == nullptr || api_->nvmlDeviceRegisterEvents == nullptr ||
      api_->nvmlEventSetWait_v2 == nullptr || api_->nvmlEventSetFree == nullptr) {
    return fail(ErrorCode::NotFound, "the NVML event API is missing: XID events are not watched");
  }
  if (events_ == nullptr) {
    nvmlReturn_t status = api_->nvmlEventSetCreate(&events_);
    if (status != NVML_SUCCESS) {
      events_ = nullptr;
      return fail(ErrorCode::Internal, "nvmlEventSetCreate: " + errorString(status));
    }
  }
  std::string refused;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    nvmlReturn_t status = api_->nvmlDeviceRegisterEvents(devices[i], nvmlEventTypeXidCriticalError, events_);
    if (status != NVML_SUCCESS) refused += (refused.empty() ? "" : "; ") + std::to_string(i) + ": " + errorString(status);
  }
  if (!refused.empty()) return fail(ErrorCode::Internal, "XID events not watched for devices " + refused);
  return {};
}

std::vector<XidEvent> Library::pollXids() {
  std::vector<XidEvent> events;
  if (events_ == nullptr) return events;
  // Bounded so that a storm cannot hold the health call past its deadline.
  for (int i = 0; i < 4096; ++i) {
    nvmlEventData_t data{};
    if (api_->nvmlEventSetWait_v2(events_, &data, 0) != NVML_SUCCESS) break;
    if ((data.eventType & nvmlEventTypeXidCriticalError) != 0) events.push_back({data.device, data.eventData});
  }
  return events;
}

std::string sysfsBusId(const std::string& nvmlBusId) {
  std::string id = lowerCase(nvmlBusId);
  std::size_t colon = id.find(':');
  // NVML writes an 8-digit domain, sysfs a 4-digit one.
  if (colon == 8 && id.compare(0, 4, "0000") == 0) id.erase(0, 4);
  return id;
}

int numaNodeOf(const std::string& sysfsRoot, const std::string& busId) {
  if (busId.empty()) return -1;
  std::ifstream file(sysfsRoot + "/bus/pci/devices/" + busId + "/numa_node");
  int node = -1;
  if (!(file >> node) || node < -1) return -1;
  return node;
}

std::string migProfileOf(const std::string& migName) {
  std::size_t at = migName.rfind("MIG ");
  if (at == std::string::npos) return {};
  std::string profile = lowerCase(migName.substr(at + 4));
  bool valid = !profile.empty() && std::all_of(profile.begin(), profile.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '+' || c == '-' || c == '_';
  });
  return valid ? profile : std::string();
}

}  // namespace bai::nvml
