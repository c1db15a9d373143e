#include "cuda_fractional_accelerator.hpp"

#include "text.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace bai::cuda {
namespace {

using nlohmann::json;

constexpr const char* kSharesSlot = "cuda.shares";
constexpr std::uint64_t kMiB = 1024 * 1024;

// floor(whole * part / total) of two quantities (total > 0).
std::uint64_t scaled(std::uint64_t whole, Quantity part, Quantity total) {
  return static_cast<std::uint64_t>(static_cast<unsigned __int128>(whole) * static_cast<unsigned __int128>(part.raw()) /
                                    static_cast<unsigned __int128>(total.raw()));
}

// Runs `argv` with `env` added to this process's environment, `input` on its stdin; waits.
// Returns an empty string on exit status 0, else what went wrong.
std::string runCommand(std::vector<std::string> argv, const std::vector<std::string>& env, const std::string& input) {
  std::vector<std::string> environment = env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    bool replaced = std::any_of(env.begin(), env.end(), [&](const std::string& e) {
      return text.substr(0, text.find('=') + 1) == std::string_view(e).substr(0, e.find('=') + 1);
    });
    if (!replaced) environment.emplace_back(text);
  }
  std::vector<char*> envp;
  for (std::string& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);

  int pipeFds[2] = {-1, -1};
  if (pipe2(pipeFds, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipeFds[0], STDIN_FILENO);
  pid_t pid = 0;
  int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipeFds[0]);
  if (spawned != 0) {
    close(pipeFds[1]);
    return "cannot run " + argv[0] + ": " + std::strerror(spawned);
  }
  if (!input.empty()) {
    ssize_t written = write(pipeFds[1], input.data(), input.size());
    (void)written;  // a daemon that does not read its stdin is no error
  }
  close(pipeFds[1]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return argv[0] + (WIFEXITED(status) ? " exited with status " + std::to_string(WEXITSTATUS(status))
                                      : " was killed by signal " + std::to_string(WTERMSIG(status)));
}

}  // namespace

CudaFractionalAccelerator::CudaFractionalAccelerator(const plugin::Host& host, std::string_view configJson)
    : CudaFractionalAccelerator(host, parseFractionalConfig(configJson)) {}

// Both main slots are offered even with no GPU, so the manager learns their types.
CudaFractionalAccelerator::CudaFractionalAccelerator(const plugin::Host& host, FractionalConfig config)
    : GpuAccelerator(host, "cuda-fractional", config,
                     {nvml::GpuSlot{kSharesSlot, false, true, {}}, nvml::GpuSlot{nvml::kDeviceSlot, false, false, {}}},
                     config.quantum),
      config_(std::move(config)) {
  const std::vector<nvml::Gpu> gpus = discover([this](const nvml::Gpu& gpu) { return offerOf(gpu); });
  for (const auto& [entry, mode] : config_.modes) {
    bool used = std::any_of(gpus.begin(), gpus.end(),
                            [&](const nvml::Gpu& g) { return entry == std::to_string(g.index) || entry == g.uuid; });
    if (!used) host.warning("cuda-fractional: modes entry \"" + entry + "\" matches no GPU");
  }
  if (config_.mps.manage) startMps();
}

CudaFractionalAccelerator::~CudaFractionalAccelerator() {
  try {
    stopMps();
  } catch (...) {  // a destructor never throws
  }
}

// ---- MPS daemon --------------------------------------------------------------------------

void CudaFractionalAccelerator::startMps() {
  if (slots().front().devices.empty()) {
    mpsStatus_ = "not started: no GPU in shares mode";
    host().info("cuda-fractional: mps.manage is set but no GPU is in shares mode: MPS not started");
    return;
  }
  std::error_code ignored;
  std::filesystem::create_directories(config_.mps.pipeDir, ignored);
  std::filesystem::create_directories(config_.mps.logDir, ignored);
  std::string failed = runCommand({config_.mps.control, "-d"},
                                  {"CUDA_MPS_PIPE_DIRECTORY=" + config_.mps.pipeDir,
                                   "CUDA_MPS_LOG_DIRECTORY=" + config_.mps.logDir},
                                  "");
  if (!failed.empty()) {
    mpsStatus_ = "start failed: " + failed;
    host().warning("cuda-fractional: cannot start the MPS control daemon: " + failed);
    return;
  }
  mpsStarted_ = true;
  mpsStatus_ = "started";
  host().info("cuda-fractional: started " + config_.mps.control + " -d (pipes in " + config_.mps.pipeDir + ")");
}

void CudaFractionalAccelerator::stopMps() {
  if (!mpsStarted_) return;
  mpsStarted_ = false;
  std::string failed = runCommand({config_.mps.control},
                                  {"CUDA_MPS_PIPE_DIRECTORY=" + config_.mps.pipeDir,
                                   "CUDA_MPS_LOG_DIRECTORY=" + config_.mps.logDir},
                                  "quit\n");
  if (!failed.empty()) host().warning("cuda-fractional: cannot stop the MPS control daemon: " + failed);
}

// ---- Devices -----------------------------------------------------------------------------

GpuMode CudaFractionalAccelerator::modeOf(const std::string& index, const std::string& uuid) const {
  if (auto byUuid = config_.modes.find(uuid); byUuid != config_.modes.end()) return byUuid->second;
  if (auto byIndex = config_.modes.find(index); byIndex != config_.modes.end()) return byIndex->second;
  return config_.defaultMode;
}

// min(memory / unit_mem, units / unit_proc), rounded down to the quantum; 1 when neither
// unit is set (or the GPU does not report the figure a unit needs).
Quantity CudaFractionalAccelerator::sharesOf(const nvml::Gpu& gpu) const {
  std::optional<Quantity> shares;
  if (config_.unitMem && gpu.memory) shares = Quantity::ratioFloor(*gpu.memory, *config_.unitMem);
  if (config_.unitProc && gpu.cores) {
    Quantity byUnits = Quantity::ratioFloor(*gpu.cores, *config_.unitProc);
    shares = shares ? std::min(*shares, byUnits) : byUnits;
  }
  if (!shares) return 1;
  __int128 quantum = config_.quantum.raw();
  return Quantity::fromRaw(shares->raw() - shares->raw() % quantum);
}

nvml::GpuOffer CudaFractionalAccelerator::offerOf(const nvml::Gpu& gpu) const {
  const std::string index = std::to_string(gpu.index);
  if (modeOf(index, gpu.uuid) == GpuMode::Device) return {};
  const Quantity shares = sharesOf(gpu);
  if (!shares.isZero()) return {kSharesSlot, shares};
  host().warning("cuda-fractional: GPU " + index + " holds less than one quantum of a share (unit_mem/unit_proc): not offered");
  return {"", shares};
}

void CudaFractionalAccelerator::addFacts(json& extraInfo) const {
  extraInfo["shares_device_count"] = slots()[0].devices.size();
  extraInfo["whole_device_count"] = slots()[1].devices.size();
  extraInfo["quantum_size"] = config_.quantum.toString();
  extraInfo["mps"] = {{"manage", config_.mps.manage},
                      {"status", mpsStatus_},
                      {"pipe_dir", config_.mps.pipeDir},
                      {"log_dir", config_.mps.logDir}};
  if (config_.unitMem) extraInfo["unit_mem"] = std::to_string(*config_.unitMem);
  if (config_.unitProc) extraInfo["unit_proc"] = std::to_string(*config_.unitProc);
}

void CudaFractionalAccelerator::addDeviceFacts(std::size_t index, json& extra) const {
  const nvml::GpuDevice& device = devices()[index];
  if (device.fraction) extra["shares"] = device.capacity.toString();
  if (!device.parent && !device.migEnabled) extra["mode"] = device.fraction ? "shares" : "device";
}

// ---- Sessions ----------------------------------------------------------------------------

// A share of a GPU in shares mode stands for unit_mem bytes and unit_proc units when set,
// else for its fraction of the GPU's capacity. Whole devices and slices are all theirs.
CudaFractionalAccelerator::GrantFigures CudaFractionalAccelerator::figures(const nvml::GpuGrant& grant) const {
  const nvml::GpuDevice& device = devices()[grant.device];
  GrantFigures result;
  if (!device.fraction) {
    result.memoryBytes = device.memory;
    result.processingUnits = device.cores;
    return result;
  }
  if (config_.unitMem) {
    result.memoryBytes = static_cast<std::uint64_t>(grant.amount.timesFloor(*config_.unitMem));
  } else if (device.memory) {
    result.memoryBytes = scaled(*device.memory, grant.amount, device.capacity);
  }
  if (config_.unitProc) {
    result.processingUnits = static_cast<std::uint64_t>(std::max<__int128>(1, grant.amount.timesFloor(*config_.unitProc)));
  } else if (device.cores) {
    result.processingUnits = std::max<std::uint64_t>(1, scaled(*device.cores, grant.amount, device.capacity));
  }
  // With unit_proc the share's units against the GPU's, else the share of the GPU itself.
  std::uint64_t percent = config_.unitProc && device.cores ? *result.processingUnits * 100 / *device.cores
                                                           : scaled(100, grant.amount, device.capacity);
  result.smPercent = static_cast<unsigned>(std::clamp<std::uint64_t>(percent, 1, 100));
  return result;
}

// A session with shares gets the MPS client limits on top of the visibility variables;
// `<index>` of CUDA_MPS_PINNED_DEVICE_MEM_LIMIT is the device's ordinal in CUDA_VISIBLE_DEVICES.
json CudaFractionalAccelerator::sessionResources(const std::vector<nvml::GpuGrant>& grants) const {
  json resources = GpuAccelerator::sessionResources(grants);
  std::vector<std::string> memLimits;
  std::optional<unsigned> threadPercent;
  for (std::size_t i = 0; i < grants.size(); ++i) {
    const nvml::GpuDevice& device = devices()[grants[i].device];
    if (!device.fraction) continue;
    GrantFigures f = figures(grants[i]);
    if (f.memoryBytes) {
      memLimits.push_back(std::to_string(i) + "=" + std::to_string(std::max<std::uint64_t>(1, *f.memoryBytes / kMiB)) + "M");
    }
    threadPercent = threadPercent ? std::min(*threadPercent, f.smPercent) : f.smPercent;
  }
  if (threadPercent) {
    json& env = resources["env"];
    env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] = std::to_string(*threadPercent);
    if (!memLimits.empty()) env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] = accel::joined(memLimits);
    env["CUDA_MPS_PIPE_DIRECTORY"] = config_.mps.pipeDir;
    env["CUDA_MPS_LOG_DIRECTORY"] = config_.mps.logDir;
  }
  return resources;
}

// ---- Measures ----------------------------------------------------------------------------

// What the session was granted, beside its GPUs' usage (a shared GPU's usage is the whole
// GPU's): memory bytes and SM percent per device, and shares.
json CudaFractionalAccelerator::grantMeasures(const std::vector<nvml::GpuGrant>& grants) const {
  json memory = json::object();
  json sm = json::object();
  json shares = json::object();
  unsigned __int128 memoryTotal = 0;
  Quantity sharesTotal;
  unsigned smMin = 100;
  for (const nvml::GpuGrant& grant : grants) {
    const nvml::GpuDevice& device = devices()[grant.device];
    GrantFigures f = figures(grant);
    if (f.memoryBytes) {
      memory[device.id] = std::to_string(*f.memoryBytes);
      memoryTotal += *f.memoryBytes;
    }
    sm[device.id] = std::to_string(f.smPercent);
    smMin = std::min(smMin, f.smPercent);
    if (device.fraction) {
      shares[device.id] = grant.amount.toString();
      sharesTotal += grant.amount;
    }
  }
  json list = json::array();
  list.push_back({{"key", "cuda_alloc_mem"}, {"unit", "bytes"}, {"value", accel::decimal(memoryTotal)}, {"per_device", std::move(memory)}});
  list.push_back({{"key", "cuda_alloc_sm"},
                  {"unit", "percent"},
                  {"value", std::to_string(sm.empty() ? 0 : smMin)},
                  {"per_device", std::move(sm)}});
  list.push_back({{"key", "cuda_alloc_shares"}, {"value", sharesTotal.toString()}, {"per_device", std::move(shares)}});
  return list;
}

}  // namespace bai::cuda
