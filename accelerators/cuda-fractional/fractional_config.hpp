// The settings of the cuda-fractional plugin: the agent's [plugins.cuda] table as JSON.
#pragma once

#include "gpu_config.hpp"

#include <bai/slots.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace bai::cuda {

// Its own keys, on top of nvml::kGpuConfigKeys.
inline constexpr plugin::ConfigKey kFractionalConfigKeys[] = {
    {"quantum_size", "decimal (number or string)", "0.01", "smallest step of a cuda.shares grant"},
    {"unit_mem", "integer bytes (number or string)", "", "device memory one share stands for"},
    {"unit_proc", "integer (number or string)", "", "processing units (NVML cores) one share stands for"},
    {"default_mode", "\"shares\" or \"device\"", "\"shares\"", "mode of a GPU that `modes` does not name"},
    {"modes", "table: GPU index or UUID -> \"shares\" | \"device\"", "{}", "per-GPU mode; MIG GPUs are always slices"},
    {"mps", "table", "{}", "manage (bool, false), control (\"nvidia-cuda-mps-control\"), pipe_dir, log_dir"},
};

enum class GpuMode { Shares, Device };

struct MpsConfig {
  bool manage = false;
  std::string control = "nvidia-cuda-mps-control";
  std::string pipeDir = "/tmp/nvidia-mps";
  std::string logDir = "/var/log/nvidia-mps";
};

struct FractionalConfig : nvml::GpuConfig {
  Quantity quantum = Quantity::fromRaw(Quantity::kScale / 100);
  std::optional<std::uint64_t> unitMem;
  std::optional<std::uint64_t> unitProc;
  GpuMode defaultMode = GpuMode::Shares;
  std::map<std::string, GpuMode> modes;  // by NVML index (as text) or UUID
  MpsConfig mps;
};

// Throws std::invalid_argument naming the key for an unknown key or a wrong type.
FractionalConfig parseFractionalConfig(std::string_view configJson);

}  // namespace bai::cuda
