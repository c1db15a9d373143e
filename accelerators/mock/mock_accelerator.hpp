// The mock accelerator: devices, MIG slices, health and faults come from its config, so
// the agent, the manager and bai-plugin-check can be exercised without hardware.
#pragma once

#include "device_health.hpp"
#include "mock_config.hpp"

#include <bai/plugin.hpp>

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bai::mock {

using accel::Health;
using accel::HealthState;

class MockAccelerator final : public plugin::Accelerator {
 public:
  MockAccelerator(const plugin::Host& host, std::string_view configJson);
  ~MockAccelerator() override;

  std::string describe() override;
  std::string listDevices() override;
  std::string slotTypes() override;
  std::string allocMapSpec() override;
  std::string prepareSession(std::string_view sessionJson) override;
  void releaseSession(std::string_view sessionJson) override;
  std::string nodeMeasures() override;
  std::string sessionMeasures(std::string_view sessionJson) override;
  std::string health() override;

 private:
  struct Slot {
    std::string name;
    bool unique = false;    // a MIG slot: exactly one slice per session
    bool fraction = false;  // <key>.shares
    std::vector<std::size_t> devices;
  };
  struct Grant {
    std::size_t device;
    Quantity amount;
  };
  struct Session {
    std::string id;
    std::vector<Grant> grants;  // in device order
  };

  // Sleeps the configured delay of `call`, then fails it if configured to.
  void enter(Call call) const;
  void indexSlots();
  HealthState healthOf(std::size_t device) const;
  HealthState ownHealth(const MockDevice& device, std::chrono::nanoseconds elapsed) const;
  const Slot* findSlot(std::string_view name) const;
  Session parseSession(std::string_view sessionJson) const;
  std::vector<Grant> parseGrants(const nlohmann::json& allocation) const;
  void checkFits(const std::vector<Grant>& grants) const;
  nlohmann::json sessionEnv(const std::vector<Grant>& grants) const;
  nlohmann::json sessionDevices(const std::vector<Grant>& grants) const;
  void addSessionExtra(nlohmann::json& answer) const;
  nlohmann::json measures(const std::vector<std::size_t>& devices) const;
  bool inSharesSlot(const MockDevice& device) const;
  std::string memoryLimit(const Grant& grant) const;
  std::string processorLimit(const Grant& grant) const;
  std::string envName(std::string_view suffix) const;

  plugin::Host host_;
  std::chrono::steady_clock::time_point createdAt_;  // fault timings count from here
  MockConfig config_;
  std::vector<Slot> slots_;
  std::unordered_map<std::string, std::size_t> deviceById_;
  std::vector<Quantity> inUse_;  // per device, over the prepared sessions
  std::unordered_map<std::string, std::vector<Grant>> prepared_;
};

}  // namespace bai::mock
