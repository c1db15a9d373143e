#include "runtime/device_program.hpp"

#include "runtime/device_rules.hpp"

#include <cstddef>

namespace bai::core {
namespace {

// The registers the prologue fills; r1 holds the context on entry, r0 the verdict.
constexpr std::uint8_t kContext = 1;
constexpr std::uint8_t kAccessType = 2;
constexpr std::uint8_t kType = 3;
constexpr std::uint8_t kAccess = 4;
constexpr std::uint8_t kMajor = 5;
constexpr std::uint8_t kMinor = 6;
constexpr std::uint8_t kVerdict = 0;

bpf_insn instruction(std::uint8_t code, std::uint8_t dst, std::uint8_t src, std::int16_t off, std::int32_t imm) {
  bpf_insn insn{};
  insn.code = code;
  insn.dst_reg = dst & 0xf;
  insn.src_reg = src & 0xf;
  insn.off = off;
  insn.imm = imm;
  return insn;
}

bpf_insn loadContextWord(std::uint8_t dst, std::size_t offset) {
  return instruction(BPF_LDX | BPF_MEM | BPF_W, dst, kContext, static_cast<std::int16_t>(offset), 0);
}
bpf_insn moveRegister(std::uint8_t dst, std::uint8_t src) {
  return instruction(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}
bpf_insn moveImmediate(std::uint8_t dst, std::int32_t imm) {
  return instruction(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
bpf_insn andImmediate(std::uint8_t dst, std::int32_t imm) {
  return instruction(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm);
}
bpf_insn shiftRight(std::uint8_t dst, std::int32_t bits) {
  return instruction(BPF_ALU64 | BPF_RSH | BPF_K, dst, 0, 0, bits);
}
bpf_insn jumpIfNotEqual(std::uint8_t dst, std::int32_t imm, std::int16_t off) {
  return instruction(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm);
}
bpf_insn jumpIfAnyBit(std::uint8_t dst, std::int32_t imm, std::int16_t off) {
  return instruction(BPF_JMP | BPF_JSET | BPF_K, dst, 0, off, imm);
}
bpf_insn exitProgram() { return instruction(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

std::int32_t accessBits(const std::string& access) {
  std::int32_t bits = 0;
  for (char letter : access) {
    if (letter == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
    if (letter == 'r') bits |= BPF_DEVCG_ACC_READ;
    if (letter == 'w') bits |= BPF_DEVCG_ACC_WRITE;
  }
  return bits;
}

// The checks of one rule, each jumping past the rest of the block when it fails.
std::vector<bpf_insn> ruleBlock(const DeviceRule& rule) {
  struct Check {
    std::uint8_t code;
    std::uint8_t reg;
    std::int32_t imm;
  };
  std::vector<Check> checks{
      {BPF_JNE, kType, rule.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR},
      // Any bit asked that the rule does not grant sends the access elsewhere.
      {BPF_JSET, kAccess, ~accessBits(rule.access)},
  };
  if (rule.major) checks.push_back({BPF_JNE, kMajor, static_cast<std::int32_t>(*rule.major)});
  if (rule.minor) checks.push_back({BPF_JNE, kMinor, static_cast<std::int32_t>(*rule.minor)});

  std::vector<bpf_insn> block;
  const std::size_t length = checks.size() + 2;  // the checks, then "r0 = 1; exit"
  for (const Check& check : checks) {
    auto skip = static_cast<std::int16_t>(length - block.size() - 1);
    block.push_back(check.code == BPF_JNE ? jumpIfNotEqual(check.reg, check.imm, skip)
                                          : jumpIfAnyBit(check.reg, check.imm, skip));
  }
  block.push_back(moveImmediate(kVerdict, 1));
  block.push_back(exitProgram());
  return block;
}

}  // namespace

Result<std::vector<bpf_insn>> buildDeviceProgram(const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> program{
      loadContextWord(kAccessType, offsetof(bpf_cgroup_dev_ctx, access_type)),
      moveRegister(kType, kAccessType),
      andImmediate(kType, 0xffff),
      moveRegister(kAccess, kAccessType),
      shiftRight(kAccess, 16),
      loadContextWord(kMajor, offsetof(bpf_cgroup_dev_ctx, major)),
      loadContextWord(kMinor, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  for (const DeviceRule& rule : rules) {
    if (Result<void> valid = checkDeviceRule(rule); !valid.ok()) return Failure{valid.error()};
    std::vector<bpf_insn> block = ruleBlock(rule);
    program.insert(program.end(), block.begin(), block.end());
  }
  program.push_back(moveImmediate(kVerdict, 0));
  program.push_back(exitProgram());
  return program;
}

}  // namespace bai::core
