// The cgroup v1 back end: a session cgroup in each hierarchy it uses. memory and cpuset
// are required; pids (pids.max), devices (devices.deny/allow) and swap accounting
// (memory.memsw) are used where the kernel has them, and their absence is a logged gap.
#pragma once

#include "runtime/cgroup_common.hpp"

#include <filesystem>
#include <memory>
#include <string>

namespace bai::core {

// Empty when <root>/memory and <root>/cpuset are writable v1 hierarchies, else why not.
std::string whyNotCgroupV1(const CgroupFs& cgroupFs, const std::filesystem::path& root,
                           const std::filesystem::path& parent);

// Probes the optional hierarchies once; call after whyNotCgroupV1() came back empty.
LimitsBackendChoice makeCgroupV1Limits(std::shared_ptr<CgroupFs> cgroupFs, const std::filesystem::path& root,
                                       const std::filesystem::path& parent);

}  // namespace bai::core
