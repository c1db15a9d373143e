// The cgroup v2 back end: one session cgroup under <root>/<parent> with cpuset and memory
// (required), pids.max and memory.swap.max where the kernel offers them, and the device
// fence as a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the session cgroup.
#pragma once

#include "runtime/cgroup_common.hpp"
#include "runtime/device_program_loader.hpp"

#include <filesystem>
#include <memory>
#include <string>

namespace bai::core {

// Empty when <root>/cgroup.controllers lists cpuset and memory and the parent is
// writable, else why not.
std::string whyNotCgroupV2(const CgroupFs& cgroupFs, const std::filesystem::path& root,
                           const std::filesystem::path& parent);

// Asks `loader` once whether device programs load here; call after whyNotCgroupV2()
// came back empty.
LimitsBackendChoice makeCgroupV2Limits(std::shared_ptr<CgroupFs> cgroupFs, const std::filesystem::path& root,
                                       const std::filesystem::path& parent,
                                       std::shared_ptr<DeviceProgramLoader> loader);

}  // namespace bai::core
