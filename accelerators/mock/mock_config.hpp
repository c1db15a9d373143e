// The mock accelerator's settings: what `create` reads from its TOML file and inline
// JSON, validated and expanded into the devices the instance offers. The format is
// described in accelerators/mock/README.md and shown by configs/accelerator/mock-*.toml.
#pragma once

#include <bai/slots.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bai::mock {

enum class AllocationMode { Discrete, Fractional };
enum class Strategy { Evenly, Fill };

// The plugin calls a fault can slow down or fail, named as in the C vtable.
enum class Call : std::size_t {
  Create,
  Destroy,
  Describe,
  ListDevices,
  SlotTypes,
  AllocMapSpec,
  PrepareSession,
  ReleaseSession,
  NodeMeasures,
  SessionMeasures,
  Health,
};
inline constexpr std::size_t kCallCount = static_cast<std::size_t>(Call::Health) + 1;
std::string_view callName(Call call);

// A device's health over time, counted from the start of `create`.
struct HealthFault {
  std::optional<std::chrono::nanoseconds> unhealthyAfter;
  std::optional<std::chrono::nanoseconds> recoverAfter;  // only with unhealthyAfter, and later
  std::optional<std::chrono::nanoseconds> goneAfter;     // gone is for good
  std::string reason;                                    // empty: a default text
};

struct Faults {
  std::array<std::optional<std::chrono::nanoseconds>, kCallCount> delay;  // slept before the call's work
  std::array<bool, kCallCount> fail{};                                    // returns BAI_ERR_UNAVAILABLE
};

// One GPU, or one MIG slice of a GPU. Slices follow their GPU in MockConfig::devices.
struct MockDevice {
  std::string id;
  std::string uuid;
  std::string model;
  std::string pciBus;
  std::int64_t numaNode = 0;
  std::optional<std::uint64_t> memory;          // bytes; optional for a MIG slice
  std::optional<std::int64_t> processingUnits;  // SMs; optional for a MIG slice
  bool migEnabled = false;                      // a GPU in MIG mode is offered only through its slices
  std::optional<std::size_t> parent;            // a slice: index of its GPU
  std::string migProfile;                       // a slice: "1g.10gb"
  std::string slot;                             // the slot it is allocated through; empty for a MIG GPU
  Quantity capacity;                            // in `slot`: 1, or the GPU's shares
  Quantity utilization;                         // percent, for node_measures
  std::uint64_t memoryUsed = 0;                 // bytes, for node_measures
  std::string deviceNode;                       // "/dev/mock0" for the session's devices; empty: none
  HealthFault fault;
};

struct MockConfig {
  std::string key;
  std::string source;  // the TOML file, or "inline config"
  AllocationMode mode = AllocationMode::Discrete;
  Strategy strategy = Strategy::Evenly;
  Quantity quantum;
  std::uint64_t unitMem = 0;
  std::int64_t unitProc = 0;
  std::vector<std::pair<std::string, std::string>> attributes;
  std::vector<std::string> masked;  // the ids of the devices device_mask hid
  std::vector<MockDevice> devices;  // the visible ones
  Faults faults;
  // [session_extra] as JSON text, {"limits": {...}, "mounts": [...], "devices": [...],
  // "cdi_devices": [...]}:
  // added to every prepare_session answer as written, so that tests can hand the agent a
  // bad payload. Empty when not configured.
  std::string sessionExtra;
};

// An amount as configs and sessions write it: a non-negative decimal ("0.5", "2") up to
// 10^18, beyond any real amount, so that sums of amounts stay far from overflow.
std::optional<Quantity> parseAmount(std::string_view text);

// The source of a mock created with an empty config: key "mock", no devices.
inline constexpr const char* kUnconfigured = "unconfigured: no [plugins.mock] table, nothing to simulate";

// Reads the JSON object `create` receives: `config_file` names a TOML file, and any other
// key is a setting given inline that replaces the file's top-level key of the same name.
// Throws plugin::StatusError(BAI_ERR_INVALID_ARGUMENT) naming the key and where it was written.
MockConfig loadMockConfig(std::string_view configJson);

}  // namespace bai::mock
