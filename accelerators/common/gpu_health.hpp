// Health and device_mask of NVIDIA GPUs and MIG slices, shared by cuda-device and
// cuda-fractional: critical XID events make a GPU unhealthy, a GPU that no longer answers
// is gone, a slice is no healthier than its GPU.
#pragma once

#include "device_health.hpp"
#include "nvml.hpp"

#include <bai/plugin.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace bai::nvml {

using accel::Health;
using accel::HealthState;

// Whether `mask` (device_mask entries) names the device by NVML index or UUID.
bool masked(const std::vector<std::string>& mask, const std::string& index, const std::string& uuid);

// The health of a plugin's offered devices, indexed as its own device list.
class HealthTracker {
 public:
  // `plugin` prefixes the log lines ("cuda-device").
  // A GPU made unhealthy by XIDs returns to service once `recovery` has passed without a
  // new critical XID and it still answers NVML (zero: never).
  HealthTracker(const plugin::Host& host, std::string plugin, std::set<unsigned long long> criticalXids,
                std::chrono::milliseconds recovery = std::chrono::minutes(5));

  // Adds the device of the next index: a GPU, or a MIG slice of the GPU at index `parent`.
  void add(std::string id, std::string uuid, nvmlDevice_t handle, std::optional<std::size_t> parent);
  // Registers the GPUs for critical XID events; the status for describe ("not watched"
  // when there is no GPU). A refusal is logged as a warning.
  std::string watch(Library& nvml);
  // Drains the pending XID events (never waits) and checks that every GPU still answers.
  void poll(Library& nvml, unsigned countAtCreate);
  HealthState of(std::size_t index) const;
  // The health payload's device list: {id, health, reason} of every device added.
  nlohmann::json report() const;

 private:
  struct Entry {
    std::string id;
    std::string uuid;
    nvmlDevice_t handle = nullptr;
    std::optional<std::size_t> parent;
    HealthState own;
    unsigned xidCount = 0;
    std::chrono::steady_clock::time_point lastXid;
  };
  std::optional<std::size_t> gpuOfHandle(nvmlDevice_t handle) const;
  void markUnhealthy(std::size_t index, unsigned long long xid);

  plugin::Host host_;
  std::string plugin_;
  std::set<unsigned long long> criticalXids_;
  std::chrono::milliseconds recovery_;
  std::vector<Entry> entries_;
};

}  // namespace bai::nvml
