#include "gpu_health.hpp"

#include <algorithm>

namespace bai::nvml {

bool masked(const std::vector<std::string>& mask, const std::string& index, const std::string& uuid) {
  return std::any_of(mask.begin(), mask.end(), [&](const std::string& entry) { return entry == index || entry == uuid; });
}

HealthTracker::HealthTracker(const plugin::Host& host, std::string plugin, std::set<unsigned long long> criticalXids,
                             std::chrono::milliseconds recovery)
    : host_(host), plugin_(std::move(plugin)), criticalXids_(std::move(criticalXids)), recovery_(recovery) {}

void HealthTracker::add(std::string id, std::string uuid, nvmlDevice_t handle, std::optional<std::size_t> parent) {
  Entry entry;
  entry.id = std::move(id);
  entry.uuid = std::move(uuid);
  entry.handle = handle;
  entry.parent = parent;
  entries_.push_back(std::move(entry));
}

std::string HealthTracker::watch(Library& nvml) {
  std::vector<nvmlDevice_t> watched;
  for (const Entry& entry : entries_) {
    if (!entry.parent) watched.push_back(entry.handle);
  }
  if (watched.empty()) return "not watched";
  auto watching = nvml.watchXids(watched);
  if (watching) return "watching critical XIDs";
  host_.warning(plugin_ + ": " + watching.error().message);
  return watching.error().message;
}

std::optional<std::size_t> HealthTracker::gpuOfHandle(nvmlDevice_t handle) const {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].handle == handle) return entries_[i].parent ? *entries_[i].parent : i;
  }
  return std::nullopt;
}

void HealthTracker::markUnhealthy(std::size_t index, unsigned long long xid) {
  Entry& gpu = entries_[index];
  ++gpu.xidCount;
  gpu.lastXid = std::chrono::steady_clock::now();
  if (gpu.own.health == Health::Gone) return;
  if (gpu.own.health == Health::Healthy) {
    host_.warning(plugin_ + ": GPU " + gpu.id + " (" + gpu.uuid + ") reported critical XID " + std::to_string(xid) +
                  ": withheld from new sessions");
  }
  gpu.own = {Health::Unhealthy, "XID " + std::to_string(xid) + " (" + std::to_string(gpu.xidCount) +
                                    " critical XID events so far)"};
}

void HealthTracker::poll(Library& nvml, unsigned countAtCreate) {
  for (const XidEvent& event : nvml.pollXids()) {
    std::optional<std::size_t> gpu = gpuOfHandle(event.device);
    if (!gpu) continue;  // a masked GPU
    if (criticalXids_.count(event.xid) == 0) {
      host_.debug(plugin_ + ": GPU " + entries_[*gpu].id + " reported XID " + std::to_string(event.xid) + " (not critical)");
      continue;
    }
    markUnhealthy(*gpu, event.xid);
  }
  auto count = nvml.deviceCount();
  bool countDropped = count && *count < countAtCreate;
  for (Entry& entry : entries_) {
    if (entry.parent || entry.own.health == Health::Gone) continue;
    // A GPU that fell off the bus still answers by handle on some drivers: ask for its UUID.
    if (std::optional<std::string> lost = nvml.lostReason(entry.handle, entry.uuid)) {
      host_.warning(plugin_ + ": GPU " + entry.id + " (" + entry.uuid + ") is gone: " + *lost +
                    (countDropped ? "; NVML now counts " + std::to_string(*count) + " GPUs" : ""));
      entry.own = {Health::Gone, *lost};
    } else if (entry.own.health == Health::Unhealthy && recovery_.count() > 0 &&
               std::chrono::steady_clock::now() - entry.lastXid >= recovery_) {
      // Quiet for the recovery time and still answering: back in service.
      host_.info(plugin_ + ": GPU " + entry.id + " (" + entry.uuid + ") had no critical XID for " +
                 std::to_string(recovery_.count() / 1000.0).substr(0, 6) + " s and answers NVML: back in service");
      entry.own = {};
    }
  }
}

HealthState HealthTracker::of(std::size_t index) const {
  const Entry& entry = entries_[index];
  if (!entry.parent) return entry.own;
  const Entry& gpu = entries_[*entry.parent];
  if (gpu.own.health <= entry.own.health) return entry.own;
  return {gpu.own.health, "GPU " + gpu.id + ": " + gpu.own.reason};
}

nlohmann::json HealthTracker::report() const {
  nlohmann::json devices = nlohmann::json::array();
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const HealthState state = of(i);
    nlohmann::json entry = {{"id", entries_[i].id}, {"health", accel::healthName(state.health)}};
    if (!state.reason.empty()) entry["reason"] = state.reason;
    devices.push_back(std::move(entry));
  }
  return devices;
}

}  // namespace bai::nvml
