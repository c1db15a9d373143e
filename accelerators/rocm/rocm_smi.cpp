#include "rocm_smi.hpp"

#include <dlfcn.h>

#include <cstdio>

namespace bai::rocm {
namespace {

constexpr int kSuccess = 0;
constexpr int kMemTypeVram = 0;  // RSMI_MEM_TYPE_VRAM
// rsmi_topo_numa_affinity_get answers this (-1 as uint32_t) for a GPU with no NUMA affinity.
constexpr std::uint32_t kNoNumaNode = 0xffffffffu;

}  // namespace

// Resolves `member` of api_ by its own name, so names and members cannot drift apart.
#define BAI_RSMI_RESOLVE(member, required)                                          \
  do {                                                                              \
    api_.member = reinterpret_cast<decltype(api_.member)>(dlsym(handle_, #member)); \
    if (api_.member == nullptr) {                                                   \
      if (required) return fail(ErrorCode::NotFound, path_ + ": no symbol " #member); \
      missing_.push_back(#member);                                                  \
    }                                                                               \
  } while (false)

Result<bool> RocmSmi::resolve() {
  BAI_RSMI_RESOLVE(rsmi_init, true);
  BAI_RSMI_RESOLVE(rsmi_shut_down, true);
  BAI_RSMI_RESOLVE(rsmi_num_monitor_devices, true);
  BAI_RSMI_RESOLVE(rsmi_dev_pci_id_get, true);
  BAI_RSMI_RESOLVE(rsmi_dev_name_get, false);
  BAI_RSMI_RESOLVE(rsmi_dev_unique_id_get, false);
  BAI_RSMI_RESOLVE(rsmi_topo_numa_affinity_get, false);
  BAI_RSMI_RESOLVE(rsmi_dev_memory_total_get, false);
  BAI_RSMI_RESOLVE(rsmi_dev_memory_usage_get, false);
  BAI_RSMI_RESOLVE(rsmi_dev_busy_percent_get, false);
  BAI_RSMI_RESOLVE(rsmi_status_string, false);
  return true;
}

#undef BAI_RSMI_RESOLVE

Result<std::unique_ptr<RocmSmi>> RocmSmi::open(const std::vector<std::string>& candidates) {
  std::string tried;
  for (const std::string& candidate : candidates) {
    void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      tried += (tried.empty() ? "" : "; ") + std::string(why != nullptr ? why : candidate + ": cannot load");
      continue;
    }
    std::unique_ptr<RocmSmi> smi(new RocmSmi(handle, candidate));
    if (auto resolved = smi->resolve(); !resolved) return Failure{resolved.error()};
    // RSMI_INIT_FLAG_ALL_GPUS would add non-AMD GPUs too: 0 asks for AMD GPUs only.
    Status status = smi->api_.rsmi_init(0);
    if (status != kSuccess) return fail(ErrorCode::Internal, candidate + ": " + smi->describeStatus("rsmi_init", status));
    smi->initialized_ = true;
    return smi;
  }
  return fail(ErrorCode::NotFound, "no ROCm SMI library could be loaded (" + tried + ")");
}

RocmSmi::~RocmSmi() {
  if (initialized_) api_.rsmi_shut_down();
  dlclose(handle_);
}

std::string RocmSmi::describeStatus(const char* call, Status status) const {
  const char* text = nullptr;
  if (api_.rsmi_status_string == nullptr || api_.rsmi_status_string(status, &text) != kSuccess || text == nullptr) {
    text = "no description";
  }
  return std::string(call) + " failed with status " + std::to_string(status) + ": " + text;
}

std::string RocmSmi::pciBusName(std::uint64_t bdfid) {
  char text[32];
  std::snprintf(text, sizeof text, "%04x:%02x:%02x.%x", static_cast<unsigned>(bdfid >> 32),
                static_cast<unsigned>((bdfid >> 8) & 0xff), static_cast<unsigned>((bdfid >> 3) & 0x1f),
                static_cast<unsigned>(bdfid & 0x7));
  return text;
}

Result<std::vector<RocmDevice>> RocmSmi::devices() const {
  std::uint32_t count = 0;
  if (Status status = api_.rsmi_num_monitor_devices(&count); status != kSuccess) {
    return fail(ErrorCode::Internal, describeStatus("rsmi_num_monitor_devices", status));
  }
  std::vector<RocmDevice> devices;
  for (std::uint32_t index = 0; index < count; ++index) {
    RocmDevice device;
    device.index = index;
    std::uint64_t value = 0;
    if (Status status = api_.rsmi_dev_pci_id_get(index, &value); status != kSuccess) {
      return fail(ErrorCode::Internal, "GPU " + std::to_string(index) + ": " + describeStatus("rsmi_dev_pci_id_get", status));
    }
    device.bdfid = value;
    char name[256] = {};
    if (api_.rsmi_dev_name_get != nullptr && api_.rsmi_dev_name_get(index, name, sizeof name) == kSuccess) {
      device.name = name;
    }
    if (api_.rsmi_dev_unique_id_get != nullptr && api_.rsmi_dev_unique_id_get(index, &value) == kSuccess) {
      device.uniqueId = value;
    }
    std::uint32_t node = kNoNumaNode;
    if (api_.rsmi_topo_numa_affinity_get != nullptr && api_.rsmi_topo_numa_affinity_get(index, &node) == kSuccess &&
        node != kNoNumaNode && node < 0x10000) {
      device.numaNode = static_cast<int>(node);
    }
    if (api_.rsmi_dev_memory_total_get != nullptr &&
        api_.rsmi_dev_memory_total_get(index, kMemTypeVram, &value) == kSuccess) {
      device.vramTotal = value;
    }
    devices.push_back(std::move(device));
  }
  return devices;
}

Usage RocmSmi::usage(std::uint32_t index) const {
  Usage usage;
  std::uint64_t used = 0;
  if (api_.rsmi_dev_memory_usage_get != nullptr && api_.rsmi_dev_memory_usage_get(index, kMemTypeVram, &used) == kSuccess) {
    usage.vramUsed = used;
  }
  std::uint32_t busy = 0;
  if (api_.rsmi_dev_busy_percent_get != nullptr && api_.rsmi_dev_busy_percent_get(index, &busy) == kSuccess) {
    usage.busyPercent = busy;
  }
  return usage;
}

std::string RocmSmi::probe(std::uint32_t index) const {
  std::uint64_t bdfid = 0;
  Status status = api_.rsmi_dev_pci_id_get(index, &bdfid);
  return status == kSuccess ? std::string() : describeStatus("rsmi_dev_pci_id_get", status);
}

}  // namespace bai::rocm
