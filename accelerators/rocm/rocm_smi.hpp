// ROCm SMI opened with dlopen: the plugin builds and loads without ROCm installed. Only the
// few calls the plugin needs are declared here (signatures of rocm_smi.h, ROCm SMI 5.2+).
#pragma once

#include <bai/result.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bai::rocm {

// One GPU as ROCm SMI numbers it. Figures a library does not offer stay empty.
struct RocmDevice {
  std::uint32_t index = 0;  // the SMI index, which ROCR_VISIBLE_DEVICES uses too
  std::string name;
  std::optional<std::uint64_t> uniqueId;
  std::optional<std::uint64_t> bdfid;  // domain << 32 | bus << 8 | device << 3 | function
  int numaNode = -1;
  std::optional<std::uint64_t> vramTotal;
};

struct Usage {
  std::optional<std::uint64_t> vramUsed;
  std::optional<std::uint32_t> busyPercent;
};

class RocmSmi {
 public:
  // dlopens the first of `candidates` that loads, resolves the symbols and calls rsmi_init.
  // Fails with a message naming each candidate and why it failed.
  static Result<std::unique_ptr<RocmSmi>> open(const std::vector<std::string>& candidates);
  ~RocmSmi();
  RocmSmi(const RocmSmi&) = delete;
  RocmSmi& operator=(const RocmSmi&) = delete;

  const std::string& path() const { return path_; }
  // Optional symbols the library lacks: each disables one figure only.
  const std::vector<std::string>& missingSymbols() const { return missing_; }

  Result<std::vector<RocmDevice>> devices() const;
  Usage usage(std::uint32_t index) const;
  // Empty when the device still answers; otherwise the SMI's reason.
  std::string probe(std::uint32_t index) const;

  // "0000:c1:00.0"
  static std::string pciBusName(std::uint64_t bdfid);

 private:
  using Status = int;  // rsmi_status_t, an enum of int size
  struct Api {
    Status (*rsmi_init)(std::uint64_t) = nullptr;
    Status (*rsmi_shut_down)() = nullptr;
    Status (*rsmi_num_monitor_devices)(std::uint32_t*) = nullptr;
    Status (*rsmi_dev_pci_id_get)(std::uint32_t, std::uint64_t*) = nullptr;
    Status (*rsmi_dev_name_get)(std::uint32_t, char*, std::size_t) = nullptr;
    Status (*rsmi_dev_unique_id_get)(std::uint32_t, std::uint64_t*) = nullptr;
    Status (*rsmi_topo_numa_affinity_get)(std::uint32_t, std::uint32_t*) = nullptr;
    Status (*rsmi_dev_memory_total_get)(std::uint32_t, int, std::uint64_t*) = nullptr;  // int: rsmi_memory_type_t
    Status (*rsmi_dev_memory_usage_get)(std::uint32_t, int, std::uint64_t*) = nullptr;
    Status (*rsmi_dev_busy_percent_get)(std::uint32_t, std::uint32_t*) = nullptr;
    Status (*rsmi_status_string)(Status, const char**) = nullptr;
  };

  RocmSmi(void* handle, std::string path) : handle_(handle), path_(std::move(path)) {}
  Result<bool> resolve();
  std::string describeStatus(const char* call, Status status) const;

  void* handle_;
  std::string path_;
  Api api_;
  bool initialized_ = false;
  std::vector<std::string> missing_;
};

}  // namespace bai::rocm
