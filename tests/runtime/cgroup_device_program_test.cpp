// The device fence's rules: checking them, writing them for cgroup v1, and assembling the
// v2 eBPF program, which runs here on a small interpreter of the instructions it uses and,
// as root, through the kernel's verifier.
#include "runtime/device_program.hpp"
#include "runtime/device_program_loader.hpp"
#include "runtime/device_rules.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <unistd.h>

namespace bai::test {
namespace {

using core::DeviceRule;

constexpr int kFault = -1;

// Runs `program` the way the kernel would on one device access; kFault (and a test
// failure) for an instruction the builder should never emit or a jump out of bounds.
int run(const std::vector<bpf_insn>& program, char type, std::uint32_t major, std::uint32_t minor,
        std::uint32_t access) {
  bpf_cgroup_dev_ctx ctx{};
  ctx.access_type = (access << 16) | (type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
  ctx.major = major;
  ctx.minor = minor;
  std::uint64_t reg[11] = {};
  for (std::size_t pc = 0, steps = 0; pc < program.size() && steps < 100000; ++pc, ++steps) {
    const bpf_insn& insn = program[pc];
    const auto imm = static_cast<std::uint64_t>(static_cast<std::int64_t>(insn.imm));
    std::uint64_t& dst = reg[insn.dst_reg];
    std::size_t target = pc + 1 + insn.off;
    switch (insn.code) {
      case BPF_LDX | BPF_MEM | BPF_W: {
        std::uint32_t word = 0;
        if (insn.src_reg != 1 || insn.off < 0 || insn.off + sizeof(word) > sizeof(ctx)) {
          ADD_FAILURE() << "load outside the context at " << pc;
          return kFault;
        }
        std::memcpy(&word, reinterpret_cast<const char*>(&ctx) + insn.off, sizeof(word));
        dst = word;
        break;
      }
      case BPF_ALU64 | BPF_MOV | BPF_X: dst = reg[insn.src_reg]; break;
      case BPF_ALU64 | BPF_MOV | BPF_K: dst = imm; break;
      case BPF_ALU64 | BPF_AND | BPF_K: dst &= imm; break;
      case BPF_ALU64 | BPF_RSH | BPF_K: dst >>= insn.imm; break;
      case BPF_JMP | BPF_JNE | BPF_K:
      case BPF_JMP | BPF_JSET | BPF_K: {
        bool taken = insn.code == (BPF_JMP | BPF_JNE | BPF_K) ? dst != imm : (dst & imm) != 0;
        if (target >= program.size()) {
          ADD_FAILURE() << "jump out of the program at " << pc;
          return kFault;
        }
        if (taken) pc = target - 1;
        break;
      }
      case BPF_JMP | BPF_EXIT: return static_cast<int>(reg[0]);
      default:
        ADD_FAILURE() << "unexpected instruction 0x" << std::hex << int(insn.code) << " at " << std::dec << pc;
        return kFault;
    }
  }
  ADD_FAILURE() << "the program ran off its end";
  return kFault;
}

constexpr std::uint32_t kRead = BPF_DEVCG_ACC_READ;
constexpr std::uint32_t kWrite = BPF_DEVCG_ACC_WRITE;
constexpr std::uint32_t kMknod = BPF_DEVCG_ACC_MKNOD;

std::vector<bpf_insn> build(const std::vector<DeviceRule>& rules) {
  Result<std::vector<bpf_insn>> program = core::buildDeviceProgram(rules);
  EXPECT_TRUE(program.ok()) << program.error().message;
  return program.ok() ? *program : std::vector<bpf_insn>{};
}

TEST(DeviceProgram, BaseRulesAllowTheirNodesAndNothingElse) {
  std::vector<bpf_insn> program = build(core::baseDeviceRules());
  EXPECT_EQ(run(program, 'c', 1, 3, kRead | kWrite), 1);   // /dev/null
  EXPECT_EQ(run(program, 'c', 1, 9, kRead), 1);            // /dev/urandom
  EXPECT_EQ(run(program, 'c', 5, 2, kRead | kWrite), 1);   // /dev/ptmx
  EXPECT_EQ(run(program, 'c', 136, 0, kRead | kWrite), 1); // pts, any minor
  EXPECT_EQ(run(program, 'c', 136, 4711, kWrite), 1);
  EXPECT_EQ(run(program, 'c', 1, 3, kMknod), 0) << "rw does not grant mknod";
  EXPECT_EQ(run(program, 'c', 1, 3, kRead | kMknod), 0);
  EXPECT_EQ(run(program, 'c', 1, 4, kRead), 0);            // /dev/port's neighbour
  EXPECT_EQ(run(program, 'c', 1, 1, kRead), 0);            // /dev/mem
  EXPECT_EQ(run(program, 'b', 1, 3, kRead), 0) << "the type is part of the match";
  EXPECT_EQ(run(program, 'c', 195, 0, kRead | kWrite), 0); // /dev/nvidia0
  EXPECT_EQ(run(program, 'c', 137, 0, kRead), 0);
}

TEST(DeviceProgram, AccessMustBeASubsetOfTheRule) {
  std::vector<bpf_insn> program = build({{'c', 10, 200, "r"}, {'c', 10, 201, "m"}});
  EXPECT_EQ(run(program, 'c', 10, 200, kRead), 1);
  EXPECT_EQ(run(program, 'c', 10, 200, kWrite), 0);
  EXPECT_EQ(run(program, 'c', 10, 200, kRead | kWrite), 0);
  EXPECT_EQ(run(program, 'c', 10, 201, kMknod), 1);
  EXPECT_EQ(run(program, 'c', 10, 201, kRead), 0);
}

TEST(DeviceProgram, WildcardsMatchEveryNumber) {
  std::vector<bpf_insn> program = build({{'b', std::nullopt, std::nullopt, "m"}, {'c', std::nullopt, 7, "rw"}});
  EXPECT_EQ(run(program, 'b', 8, 0, kMknod), 1);
  EXPECT_EQ(run(program, 'b', 259, 12, kMknod), 1);
  EXPECT_EQ(run(program, 'b', 8, 0, kRead), 0);
  EXPECT_EQ(run(program, 'c', 8, 0, kMknod), 0);
  EXPECT_EQ(run(program, 'c', 4095, 7, kRead), 1);
  EXPECT_EQ(run(program, 'c', 4095, 8, kRead), 0);
}

TEST(DeviceProgram, LargestNumbersCompareExactly) {
  std::vector<bpf_insn> program = build({{'c', core::kMaxDeviceMajor, core::kMaxDeviceMinor, "rw"}});
  EXPECT_EQ(run(program, 'c', core::kMaxDeviceMajor, core::kMaxDeviceMinor, kRead), 1);
  EXPECT_EQ(run(program, 'c', core::kMaxDeviceMajor, core::kMaxDeviceMinor - 1, kRead), 0);
}

TEST(DeviceProgram, NoRulesDenyEverything) {
  std::vector<bpf_insn> program = build({});
  EXPECT_EQ(run(program, 'c', 1, 3, kRead), 0);
  EXPECT_EQ(run(program, 'b', 8, 0, kRead), 0);
  ASSERT_GE(program.size(), 2u);
  EXPECT_EQ(program.back().code, BPF_JMP | BPF_EXIT);
}

TEST(DeviceProgram, RulesTheFenceCannotExpressAreRefusedByName) {
  struct Case {
    DeviceRule rule;
    const char* named;
  };
  for (const Case& bad : {Case{{'a', std::nullopt, std::nullopt, "rwm"}, "'c' or 'b'"},
                          Case{{'c', 4096, 0, "rw"}, "major"}, Case{{'c', 1, 1u << 20, "rw"}, "minor"},
                          Case{{'c', 1, 3, ""}, "empty"}, Case{{'c', 1, 3, "rx"}, "subset"},
                          Case{{'c', 1, 3, "rr"}, "repeats"}}) {
    Result<std::vector<bpf_insn>> program = core::buildDeviceProgram({{'c', 1, 3, "rw"}, bad.rule});
    ASSERT_FALSE(program.ok()) << bad.named;
    EXPECT_EQ(program.error().code, ErrorCode::InvalidArgument);
    EXPECT_NE(program.error().message.find(bad.named), std::string::npos) << program.error().message;
    EXPECT_NE(program.error().message.find("device rule"), std::string::npos) << program.error().message;
  }
}

TEST(DeviceRules, V1LinesUseStarForAnyNumber) {
  EXPECT_EQ(core::devicesAllowLine({'c', 1, 3, "rw"}), "c 1:3 rw");
  EXPECT_EQ(core::devicesAllowLine({'c', 136, std::nullopt, "rw"}), "c 136:* rw");
  EXPECT_EQ(core::devicesAllowLine({'b', std::nullopt, std::nullopt, "m"}), "b *:* m");
}

// The kernel's verifier has the last word on the encoding.
TEST(DeviceProgramInTheKernel, VerifierAcceptsTheProgram) {
  if (::geteuid() != 0) GTEST_SKIP() << "loading a BPF program needs root";
  std::shared_ptr<core::DeviceProgramLoader> loader = core::kernelDeviceProgramLoader();
  std::string why = loader->whyUnavailable();
  EXPECT_EQ(why, "") << "root on Linux >= 4.15 loads device programs";
  if (!why.empty()) GTEST_SKIP() << why;
  // Attaching to a missing cgroup fails after the load: the error says which step failed.
  Result<void> attached = loader->attach("/nonexistent-cgroup", build(core::baseDeviceRules()));
  ASSERT_FALSE(attached.ok());
  EXPECT_NE(attached.error().message.find("opening cgroup /nonexistent-cgroup"), std::string::npos)
      << attached.error().message;
}

TEST(DeviceProgramInTheKernel, VerifierRefusalCarriesItsReason) {
  if (::geteuid() != 0) GTEST_SKIP() << "loading a BPF program needs root";
  std::shared_ptr<core::DeviceProgramLoader> loader = core::kernelDeviceProgramLoader();
  if (std::string why = loader->whyUnavailable(); !why.empty()) GTEST_SKIP() << why;
  // Exits without setting r0: the verifier refuses to read an uninitialised register.
  std::vector<bpf_insn> broken{{BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
  Result<void> attached = loader->attach("/sys/fs/cgroup", broken);
  ASSERT_FALSE(attached.ok());
  EXPECT_NE(attached.error().message.find("verifier: "), std::string::npos) << attached.error().message;
  EXPECT_NE(attached.error().message.find("R0"), std::string::npos) << attached.error().message;
}

}  // namespace
}  // namespace bai::test
