// NVML reached through dlopen: the CUDA plugins never link the driver, so a node without
// one loads them and reports zero devices with the reason (see Library::open).
#pragma once

#include "nvml_api.h"

#include <bai/result.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bai::nvml {

// A MIG slice's GPU instance and compute instance: they name its capability nodes.
struct MigInstances {
  unsigned gpuInstance = 0;
  unsigned computeInstance = 0;
};

struct MigSlice {
  unsigned index = 0;  // on its GPU, as nvmlDeviceGetMigDeviceHandleByIndex takes it
  nvmlDevice_t handle = nullptr;
  std::string uuid;                     // "MIG-..."
  std::string name;                     // "NVIDIA H100 80GB HBM3 MIG 1g.10gb"
  std::string profile;                  // "1g.10gb"; empty when the name does not say
  std::optional<std::uint64_t> memory;  // bytes
  std::optional<MigInstances> instances;
};

struct Gpu {
  unsigned index = 0;  // NVML index at discovery
  nvmlDevice_t handle = nullptr;
  std::string uuid;  // "GPU-..."
  std::string name;
  std::string pciBus;  // sysfs form, lower case: "0000:18:00.0"; empty when unknown
  std::optional<unsigned> minor;  // of its node /dev/nvidia<minor>
  int numaNode = -1;
  std::optional<std::uint64_t> memory;  // bytes
  std::optional<unsigned> cores;
  bool migEnabled = false;
  std::vector<MigSlice> slices;  // only when migEnabled
};

struct XidEvent {
  nvmlDevice_t device = nullptr;
  unsigned long long xid = 0;
};

struct Usage {
  std::optional<unsigned> utilizationPercent;
  std::optional<std::uint64_t> memoryUsed;
};

// One loaded and initialised NVML. Every instance dlopens and nvmlInit_v2s on its own
// (both are reference-counted), so instances never share state.
class Library {
 public:
  // dlopens `path` (RTLD_NOW | RTLD_LOCAL), resolves the required symbols and calls
  // nvmlInit_v2. The error says which step failed; no library is ErrorCode::NotFound.
  static Result<std::unique_ptr<Library>> open(const std::string& path);
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  // Optional symbols the library lacks: each disables one feature only.
  const std::vector<std::string>& missingOptional() const { return missingOptional_; }
  std::optional<std::string> driverVersion() const;
  // The file the dynamic loader found for `path` ("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"):
  // the driver's other libraries are beside it.
  std::string loadedFrom() const;

  // Every GPU NVML reports now, with its MIG slices; NUMA nodes from <sysfsRoot>/bus/pci.
  // A GPU that does not answer is left out and described in `skipped`.
  Result<std::vector<Gpu>> discover(const std::string& sysfsRoot, std::vector<std::string>& skipped) const;
  Result<unsigned> deviceCount() const;
  // Whether `device` no longer answers as the GPU `uuid` (fell off the bus, removed).
  std::optional<std::string> lostReason(nvmlDevice_t device, const std::string& uuid) const;
  Usage usage(nvmlDevice_t device) const;

  // Registers `devices` for critical XID events. Fails when the event API is missing or
  // refuses every device; a device that cannot be registered is named in the error.
  Result<void> watchXids(const std::vector<nvmlDevice_t>& devices);
  // The XID events pending now; never waits.
  std::vector<XidEvent> pollXids();

  std::string errorString(nvmlReturn_t code) const;

 private:
  struct Api;
  Library(void* handle, std::unique_ptr<Api> api, std::vector<std::string> missingOptional);

  void* handle_;
  std::unique_ptr<Api> api_;
  std::vector<std::string> missingOptional_;
  nvmlEventSet_t events_ = nullptr;
};

// "00000000:18:00.0" (NVML) -> "0000:18:00.0" (sysfs).
std::string sysfsBusId(const std::string& nvmlBusId);
// <sysfsRoot>/bus/pci/devices/<busId>/numa_node, or -1 when absent or unreadable.
int numaNodeOf(const std::string& sysfsRoot, const std::string& busId);
// "NVIDIA H100 80GB HBM3 MIG 1g.10gb" -> "1g.10gb"; empty when the name has no profile.
std::string migProfileOf(const std::string& migName);

}  // namespace bai::nvml
