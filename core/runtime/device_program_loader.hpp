// Loads a device program into the kernel and attaches it to a cgroup v2 directory. Behind
// an interface so that the v2 back end's tests against a fake cgroupfs need no bpf(2).
#pragma once

#include "bai/result.hpp"

#include <linux/bpf.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace bai::core {

class DeviceProgramLoader {
 public:
  virtual ~DeviceProgramLoader() = default;
  // Empty when device programs can be loaded here, else why not (no CAP_BPF, a kernel
  // without CONFIG_CGROUP_BPF). Detection asks once.
  virtual std::string whyUnavailable() = 0;
  // Loads `program` and attaches it to the cgroup `cgroupDir`, replacing the one a
  // previous call attached; descendants cannot override it. The kernel detaches it when
  // the cgroup is removed. A verifier refusal carries the verifier's reason.
  virtual Result<void> attach(const std::filesystem::path& cgroupDir, const std::vector<bpf_insn>& program) = 0;
};

// The bpf(2) system call: BPF_PROG_LOAD (BPF_PROG_TYPE_CGROUP_DEVICE), BPF_PROG_ATTACH
// (BPF_CGROUP_DEVICE) on the cgroup's directory fd.
std::shared_ptr<DeviceProgramLoader> kernelDeviceProgramLoader();

}  // namespace bai::core
