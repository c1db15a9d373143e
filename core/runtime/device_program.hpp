// The v2 device fence as an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE), assembled by hand
// from device rules: no libbpf, no clang. The kernel runs it on every open/mknod of a
// device node by a process in the cgroup; it returns 1 to allow, 0 to deny (EPERM).
#pragma once

#include "bai/result.hpp"
#include "runtime/sandbox_spec.hpp"

#include <linux/bpf.h>

#include <vector>

namespace bai::core {

// For each rule in order: the type (ctx->access_type & 0xffff), the access asked
// (ctx->access_type >> 16, a subset of the rule's rwm bits), the major and the minor
// (each skipped when the rule says '*'); a match returns 1, the end returns 0. No rules:
// a program that denies every device. Pure; fails for a rule checkDeviceRule refuses.
Result<std::vector<bpf_insn>> buildDeviceProgram(const std::vector<DeviceRule>& rules);

}  // namespace bai::core
