// A fake libnvidia-ml.so.1 for the CUDA plugins' tests: it answers from the JSON file
// named by BAI_FAKE_NVML_CONFIG, read at the first nvmlInit_v2 (scenarios/README.md).
// Built with the prototypes the plugins resolve (accelerators/common/nvml_api.h), so a
// signature that drifts breaks the build. -DBAI_FAKE_NVML_MINIMAL leaves out the
// optional symbols (cores, utilisation, events, driver version);
// -DBAI_FAKE_NVML_NO_COUNT leaves out the required nvmlDeviceGetCount_v2.
#include "nvml_api.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

using nlohmann::json;

struct FakeDevice {
  std::string uuid;
  std::string name;
  std::string pciBusId;
  unsigned long long memoryTotal = 0;
  unsigned long long memoryUsed = 0;
  unsigned cores = 0;
  unsigned utilization = 0;
  unsigned migMode = NVML_DEVICE_MIG_DISABLE;
  unsigned maxMigDevices = 7;
  unsigned minorNumber = 0;       // a GPU's /dev/nvidia<minor>
  unsigned gpuInstanceId = 0;     // a MIG device's
  unsigned computeInstanceId = 0;
  std::vector<std::unique_ptr<FakeDevice>> migDevices;
  std::vector<unsigned long long> xids;  // queued on every event set the device registers with
  long goneAfterCountCalls = -1;         // gone from this call of nvmlDeviceGetCount_v2 on (1 = the first)
};

struct EventSet {
  std::deque<nvmlEventData_t> pending;
};

struct State {
  std::mutex mutex;
  int initCount = 0;
  std::string driverVersion = "550.54.15";
  std::vector<std::unique_ptr<FakeDevice>> gpus;
  long countCalls = 0;
};

State& state() {
  static State instance;
  return instance;
}

nvmlDevice_t handleOf(FakeDevice* device) { return reinterpret_cast<nvmlDevice_t>(device); }
FakeDevice* deviceOf(nvmlDevice_t handle) { return reinterpret_cast<FakeDevice*>(handle); }

// `position`: in the scenario's devices (a GPU's default minor number) or in its GPU's
// mig_devices (a MIG device's default GPU instance id).
std::unique_ptr<FakeDevice> readDevice(const json& entry, unsigned position) {
  auto device = std::make_unique<FakeDevice>();
  device->minorNumber = entry.value("minor_number", position);
  device->gpuInstanceId = entry.value("gpu_instance_id", position);
  device->computeInstanceId = entry.value("compute_instance_id", 0U);
  device->uuid = entry.value("uuid", "");
  device->name = entry.value("name", "");
  device->pciBusId = entry.value("pci_bus_id", "");
  device->memoryTotal = entry.value("memory_total", 0ULL);
  device->memoryUsed = entry.value("memory_used", 0ULL);
  device->cores = entry.value("cores", 0U);
  device->utilization = entry.value("utilization", 0U);
  device->migMode = entry.value("mig_mode", 0U);
  device->xids = entry.value("xids", std::vector<unsigned long long>{});
  device->goneAfterCountCalls = entry.value("gone_after_count_calls", -1L);
  for (const json& mig : entry.value("mig_devices", json::array())) {
    device->migDevices.push_back(readDevice(mig, static_cast<unsigned>(device->migDevices.size())));
  }
  return device;
}

// Returns an NVML status: the scenario's init_error, or success.
nvmlReturn_t loadScenario(State& s) {
  const char* path = std::getenv("BAI_FAKE_NVML_CONFIG");
  if (path == nullptr) return NVML_ERROR_DRIVER_NOT_LOADED;
  std::ifstream file(path);
  json scenario = json::parse(file, nullptr, false);
  if (scenario.is_discarded() || !scenario.is_object()) return NVML_ERROR_UNKNOWN;
  if (scenario.contains("init_error")) {
    const json& error = scenario["init_error"];
    if (error.is_boolean() && error.get<bool>()) return NVML_ERROR_DRIVER_NOT_LOADED;
    if (error.is_number_integer() && error.get<int>() != 0) return error.get<int>();
  }
  s.driverVersion = scenario.value("driver_version", s.driverVersion);
  s.gpus.clear();
  s.countCalls = 0;
  for (const json& entry : scenario.value("devices", json::array())) {
    s.gpus.push_back(readDevice(entry, static_cast<unsigned>(s.gpus.size())));
  }
  return NVML_SUCCESS;
}

bool gone(const State& s, const FakeDevice& device) {
  return device.goneAfterCountCalls >= 0 && s.countCalls >= device.goneAfterCountCalls;
}

// The GPUs present now, in index order (a GPU that is gone shifts the ones after it).
std::vector<FakeDevice*> present(State& s) {
  std::vector<FakeDevice*> list;
  for (auto& gpu : s.gpus) {
    if (!gone(s, *gpu)) list.push_back(gpu.get());
  }
  return list;
}

// Whether `handle` names a GPU or MIG device of the scenario that is still present.
nvmlReturn_t check(State& s, nvmlDevice_t handle) {
  if (s.initCount == 0) return NVML_ERROR_UNINITIALIZED;
  if (handle == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  for (auto& gpu : s.gpus) {
    bool match = handleOf(gpu.get()) == handle;
    for (auto& mig : gpu->migDevices) match = match || handleOf(mig.get()) == handle;
    if (match) return gone(s, *gpu) ? NVML_ERROR_GPU_IS_LOST : NVML_SUCCESS;
  }
  return NVML_ERROR_INVALID_ARGUMENT;
}

// Under the lock: checks `device` and that no output pointer is null, then `read` answers
// from the device.
template <class Read, class... Out>
nvmlReturn_t readDevice(nvmlDevice_t device, Read read, Out*... outputs) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (nvmlReturn_t status = check(s, device); status != NVML_SUCCESS) return status;
  if ((... || (outputs == nullptr))) return NVML_ERROR_INVALID_ARGUMENT;
  return read(*deviceOf(device));
}

nvmlReturn_t copyText(const std::string& text, char* buffer, unsigned length) {
  if (buffer == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (text.size() + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  std::memcpy(buffer, text.c_str(), text.size() + 1);
  return NVML_SUCCESS;
}

}  // namespace

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

FAKE_EXPORT nvmlReturn_t nvmlInit_v2(void) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.initCount == 0) {
    nvmlReturn_t status = loadScenario(s);
    if (status != NVML_SUCCESS) return status;
  }
  ++s.initCount;
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlShutdown(void) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.initCount == 0) return NVML_ERROR_UNINITIALIZED;
  if (--s.initCount == 0) s.gpus.clear();
  return NVML_SUCCESS;
}

FAKE_EXPORT const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS:
      return "Success";
    case NVML_ERROR_UNINITIALIZED:
      return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT:
      return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED:
      return "Not Supported";
    case NVML_ERROR_NOT_FOUND:
      return "Not Found";
    case NVML_ERROR_DRIVER_NOT_LOADED:
      return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT:
      return "Timeout";
    case NVML_ERROR_GPU_IS_LOST:
      return "GPU is lost";
    default:
      return "Unknown Error";
  }
}

#ifndef BAI_FAKE_NVML_MINIMAL
FAKE_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.initCount == 0) return NVML_ERROR_UNINITIALIZED;
  return copyText(s.driverVersion, version, length);
}
#endif

#ifndef BAI_FAKE_NVML_NO_COUNT
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* deviceCount) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.initCount == 0) return NVML_ERROR_UNINITIALIZED;
  if (deviceCount == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  ++s.countCalls;
  *deviceCount = static_cast<unsigned>(present(s).size());
  return NVML_SUCCESS;
}
#endif

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.initCount == 0) return NVML_ERROR_UNINITIALIZED;
  std::vector<FakeDevice*> gpus = present(s);
  if (device == nullptr || index >= gpus.size()) return NVML_ERROR_INVALID_ARGUMENT;
  *device = handleOf(gpus[index]);
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  return readDevice(device, [&](const FakeDevice& d) { return copyText(d.uuid, uuid, length); });
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  return readDevice(device, [&](const FakeDevice& d) { return copyText(d.name, name, length); });
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  return readDevice(
      device,
      [&](const FakeDevice& d) {
        memory->total = d.memoryTotal;
        memory->used = d.memoryUsed;
        memory->free = d.memoryTotal - d.memoryUsed;
        return NVML_SUCCESS;
      },
      memory);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  return readDevice(
      device,
      [&](const FakeDevice& d) {
        *pci = nvmlPciInfo_t{};
        return copyText(d.pciBusId, pci->busId, sizeof pci->busId);
      },
      pci);
}

#ifndef BAI_FAKE_NVML_MINIMAL
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNumGpuCores(nvmlDevice_t device, unsigned int* numCores) {
  return readDevice(device, [&](const FakeDevice& d) { return *numCores = d.cores, NVML_SUCCESS; }, numCores);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t* utilization) {
  return readDevice(
      device, [&](const FakeDevice& d) { return *utilization = {d.utilization, 0}, NVML_SUCCESS; }, utilization);
}
#endif

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int* currentMode, unsigned int* pendingMode) {
  return readDevice(
      device, [&](const FakeDevice& d) { return *currentMode = *pendingMode = d.migMode, NVML_SUCCESS; }, currentMode,
      pendingMode);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int* count) {
  return readDevice(device, [&](const FakeDevice& d) { return *count = d.maxMigDevices, NVML_SUCCESS; }, count);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, nvmlDevice_t* migDevice) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (nvmlReturn_t status = check(s, device); status != NVML_SUCCESS) return status;
  FakeDevice& gpu = *deviceOf(device);
  if (gpu.migMode != NVML_DEVICE_MIG_ENABLE) return NVML_ERROR_INVALID_ARGUMENT;
  if (migDevice == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (index >= gpu.migDevices.size()) return NVML_ERROR_NOT_FOUND;  // an unused slot of the MIG table
  *migDevice = handleOf(gpu.migDevices[index].get());
  return NVML_SUCCESS;
}

#ifndef BAI_FAKE_NVML_MINIMAL
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int* minorNumber) {
  return readDevice(device, [&](const FakeDevice& d) { return *minorNumber = d.minorNumber, NVML_SUCCESS; }, minorNumber);
}

namespace {

bool isMigDevice(const FakeDevice& device) {
  for (auto& gpu : state().gpus) {
    for (auto& mig : gpu->migDevices) {
      if (mig.get() == &device) return true;
    }
  }
  return false;
}

}  // namespace

// A GPU that is no MIG device answers INVALID_ARGUMENT, as NVML does.
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int* id) {
  return readDevice(
      device, [&](const FakeDevice& d) { return isMigDevice(d) ? (*id = d.gpuInstanceId, NVML_SUCCESS) : NVML_ERROR_INVALID_ARGUMENT; },
      id);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int* id) {
  return readDevice(
      device,
      [&](const FakeDevice& d) { return isMigDevice(d) ? (*id = d.computeInstanceId, NVML_SUCCESS) : NVML_ERROR_INVALID_ARGUMENT; },
      id);
}

FAKE_EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t* set) {
  if (set == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *set = reinterpret_cast<nvmlEventSet_t>(new EventSet());
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long eventTypes, nvmlEventSet_t set) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (nvmlReturn_t status = check(s, device); status != NVML_SUCCESS) return status;
  if (set == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if ((eventTypes & nvmlEventTypeXidCriticalError) == 0) return NVML_SUCCESS;
  auto* events = reinterpret_cast<EventSet*>(set);
  for (unsigned long long xid : deviceOf(device)->xids) {
    events->pending.push_back(nvmlEventData_t{device, nvmlEventTypeXidCriticalError, xid, 0xFFFFFFFFu, 0xFFFFFFFFu});
  }
  return NVML_SUCCESS;
}

// Never sleeps: an empty set times out at once, whatever `timeoutms` says.
FAKE_EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int /*timeoutms*/) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (set == nullptr || data == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  auto* events = reinterpret_cast<EventSet*>(set);
  if (events->pending.empty()) return NVML_ERROR_TIMEOUT;
  *data = events->pending.front();
  events->pending.pop_front();
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
  delete reinterpret_cast<EventSet*>(set);
  return NVML_SUCCESS;
}
#endif
