// Checks a cgroup device rule and writes it the way cgroup v1's devices.allow reads it.
// Both device fences (v1 lines, the v2 program) accept exactly the rules checked here.
#pragma once

#include "bai/result.hpp"
#include "runtime/sandbox_spec.hpp"

#include <cstdint>
#include <string>

namespace bai::core {

// Linux device numbers: a 12-bit major and a 20-bit minor.
inline constexpr std::uint32_t kMaxDeviceMajor = (1u << 12) - 1;
inline constexpr std::uint32_t kMaxDeviceMinor = (1u << 20) - 1;

// Type 'c' or 'b' (v1's 'a' would reset the whole list, never one rule), numbers in
// range, access a non-empty subset of "rwm". The error names the rule and what is wrong.
Result<void> checkDeviceRule(const DeviceRule& rule);

// "c 1:3 rw", "c 136:* rw".
std::string devicesAllowLine(const DeviceRule& rule);

}  // namespace bai::core
