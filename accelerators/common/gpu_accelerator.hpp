// The GPU inventory both CUDA plugins are built on: the NVIDIA GPUs and MIG slices NVML
// reports at create (less device_mask), the slots that offer them, their health and
// usage, and the sessions prepared on them. As it stands it offers every GPU whole as
// `cuda.device` and every MIG slice as `cuda.device:<profile>-mig`: that is cuda-device.
// cuda-fractional chooses per GPU (GpuOffer) and adds shares and MPS limits through the
// protected hooks.
#pragma once

#include "gpu_config.hpp"
#include "gpu_health.hpp"
#include "nvml.hpp"

#include <bai/plugin.hpp>
#include <bai/slots.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace bai::nvml {

inline constexpr const char* kDeviceSlot = "cuda.device";

// A GPU or a MIG slice, as offered.
struct GpuDevice {
  std::string id;  // GPU: its NVML index at create; slice: its MIG UUID
  std::string uuid;
  std::string model;
  std::string pciBus;
  int numaNode = -1;
  std::optional<std::uint64_t> memory;
  std::optional<unsigned> cores;
  std::string slot;        // empty when not offered: a GPU in MIG mode (only its slices are), or one left out
  bool fraction = false;   // its slot is a fraction slot (cuda.shares)
  Quantity capacity = 1;   // what its slot's map holds of it: 1, or its shares
  std::optional<std::size_t> parent;  // a slice's GPU
  std::string migProfile;
  bool migEnabled = false;
  nvmlDevice_t handle = nullptr;
  // What a session granted it opens: the GPU's /dev/nvidia<minor> (a slice's is its
  // GPU's) and a slice's MIG capability nodes; found at create.
  std::vector<std::string> nodes;
  // Its name in the node's CDI spec ("nvidia.com/gpu=GPU-..."); empty when no spec names it.
  std::string cdiName;
};

struct GpuSlot {
  std::string name;
  bool unique = false;    // a MIG slot: one slice per session
  bool fraction = false;  // shares of GPUs, in steps of the quantum
  std::vector<std::size_t> devices;
};

// How a GPU that is not in MIG mode is offered: in `slot` with `capacity`; an empty slot leaves it out.
struct GpuOffer {
  std::string slot = kDeviceSlot;
  Quantity capacity = 1;
};

// A device of a prepared session and the amount of its slot it holds.
struct GpuGrant {
  std::size_t device = 0;
  Quantity amount;
};

class GpuAccelerator : public plugin::Accelerator {
 public:
  // Whole devices only: cuda-device.
  GpuAccelerator(const plugin::Host& host, std::string_view configJson);
  ~GpuAccelerator() override;

  std::string describe() override;
  std::string listDevices() override;
  std::string slotTypes() override;
  std::string allocMapSpec() override;
  std::string prepareSession(std::string_view sessionJson) override;
  void releaseSession(std::string_view sessionJson) override;
  std::string nodeMeasures() override;
  std::string sessionMeasures(std::string_view sessionJson) override;
  std::string health() override;

 protected:
  using OfferChooser = std::function<GpuOffer(const Gpu& gpu)>;

  // `plugin` prefixes the log lines; `slots` are offered even with no GPU (the manager
  // learns their types), in this order; `quantum` is the step of the fraction slots.
  GpuAccelerator(const plugin::Host& host, std::string plugin, const GpuConfig& config, std::vector<GpuSlot> slots,
                 Quantity quantum);
  // Opens NVML and adds what it reports; a GPU's offer comes from `chooseOffer`. Returns
  // the GPUs NVML reported (none without NVML), for the caller's own config checks.
  std::vector<Gpu> discover(const OfferChooser& chooseOffer);

  // describe's extra_info facts of the plugin's own.
  virtual void addFacts(nlohmann::json& extraInfo) const;
  // list_devices' "extra" facts of device `index` of the plugin's own.
  virtual void addDeviceFacts(std::size_t index, nlohmann::json& extra) const;
  // prepare_session's answer for `grants`, which fit (checked): the visibility variables
  // and the device nodes.
  virtual nlohmann::json sessionResources(const std::vector<GpuGrant>& grants) const;
  // session_measures' measures beyond the devices' usage.
  virtual nlohmann::json grantMeasures(const std::vector<GpuGrant>& grants) const;

  const plugin::Host& host() const { return host_; }
  const std::vector<GpuDevice>& devices() const { return devices_; }
  const std::vector<GpuSlot>& slots() const { return slots_; }
  // cuda_util and cuda_mem over `devices` (NVML has no utilisation per MIG slice).
  nlohmann::json usageMeasures(const std::vector<std::size_t>& devices) const;
  // CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES: a session without a GPU sees none.
  static nlohmann::json visibilityEnv(const std::vector<std::string>& uuids);

 private:
  void addGpu(const Gpu& gpu, const OfferChooser& chooseOffer);
  std::size_t addDevice(GpuDevice device);
  std::vector<std::string> gpuNodes(const Gpu& gpu) const;
  // A MIG slice's capability nodes, after its GPU's node in `nodes`.
  void addCapabilityNodes(const Gpu& gpu, const MigSlice& slice, std::vector<std::string>& nodes) const;
  // prepare_session's "devices": the granted devices' nodes and the control nodes; none without a GPU.
  nlohmann::json deviceNodes(const std::vector<GpuGrant>& grants) const;
  // Reads the CDI specs of cdi_spec_dirs (before the GPUs are added, which take names from them).
  void readCdiSpecs();
  // The spec's name for a device known by `names`, in order of preference; empty when none.
  std::string cdiNameOf(const std::vector<std::string>& names) const;
  // The granted devices' CDI names, or none unless every one has a name: a container then
  // gets the nodes and the driver's files instead.
  std::vector<std::string> cdiDevices(const std::vector<GpuGrant>& grants) const;
  GpuSlot* findSlot(std::string_view name);
  const GpuSlot* findSlot(std::string_view name) const;
  // The allocation's grants, checked against the slots and devices, in device order.
  std::vector<GpuGrant> parseGrants(const nlohmann::json& allocation) const;
  // Throws unless every grant's device is healthy and has room for it.
  void checkFits(const std::vector<GpuGrant>& grants) const;
  const std::vector<GpuGrant>& preparedGrants(const std::string& sessionId) const;

  plugin::Host host_;
  std::string plugin_;
  GpuConfig config_;
  Quantity quantum_;
  HealthTracker health_;  // indexed as devices_
  std::unique_ptr<Library> nvml_;
  std::string noDeviceReason_;  // why there are no devices, when there are none
  std::optional<std::string> driverVersion_;
  std::string eventsStatus_ = "not watched";
  std::set<std::string> cdiNames_;         // the nvidia.com/gpu devices of the CDI specs
  std::vector<std::string> cdiSpecFiles_;  // the specs that offered them
  std::vector<std::string> driverFiles_;   // mounted into sessions that get no CDI devices
  std::vector<std::string> maskedDevices_;
  std::vector<GpuDevice> devices_;
  std::vector<GpuSlot> slots_;
  std::map<std::string, std::size_t> deviceById_;
  std::vector<Quantity> inUse_;  // per device, over the prepared sessions
  std::map<std::string, std::vector<GpuGrant>> prepared_;
  unsigned countAtCreate_ = 0;
};

}  // namespace bai::nvml
