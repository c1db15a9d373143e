#include "runtime/device_program_loader.hpp"

#include "runtime/atomic_file.hpp"

#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace bai::core {
namespace {

// The verifier explains a refusal in its log; the end of it names the failing instruction.
constexpr std::size_t kVerifierLogSize = 64 * 1024;
constexpr std::size_t kVerifierReasonChars = 600;

long bpf(int command, bpf_attr& attr) { return ::syscall(SYS_bpf, command, &attr, sizeof(attr)); }

std::string lastChars(const std::string& text, std::size_t count) {
  std::string trimmed = text.substr(0, text.find_last_not_of("\n") + 1);
  return trimmed.size() <= count ? trimmed : "..." + trimmed.substr(trimmed.size() - count);
}

// A file descriptor, closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Result<int> loadProgram(const std::vector<bpf_insn>& program) {
  static const char kLicense[] = "GPL";  // not required for device programs; harmless
  auto load = [&](char* log, std::uint32_t logSize) {
    bpf_attr attr{};
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = reinterpret_cast<std::uintptr_t>(program.data());
    attr.insn_cnt = static_cast<std::uint32_t>(program.size());
    attr.license = reinterpret_cast<std::uintptr_t>(kLicense);
    attr.log_level = log != nullptr ? 1 : 0;
    attr.log_buf = reinterpret_cast<std::uintptr_t>(log);
    attr.log_size = logSize;
    return static_cast<int>(bpf(BPF_PROG_LOAD, attr));
  };
  // Without a log first: the verifier runs faster and most loads succeed.
  int fd = load(nullptr, 0);
  if (fd >= 0) return fd;
  int error = errno;
  std::string log(kVerifierLogSize, '\0');
  if (int retried = load(log.data(), static_cast<std::uint32_t>(log.size())); retried >= 0) return retried;
  std::string message =
      describeErrno("loading the device program (" + std::to_string(program.size()) + " instructions)", error);
  log.resize(log.find('\0'));
  if (!log.empty()) message += "; verifier: " + lastChars(log, kVerifierReasonChars);
  return fail(ErrorCode::Internal, message);
}

class KernelDeviceProgramLoader final : public DeviceProgramLoader {
 public:
  std::string whyUnavailable() override {
    std::vector<bpf_insn> allowAll{{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1}, {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
    Result<int> fd = loadProgram(allowAll);
    if (!fd.ok()) return fd.error().message;
    ::close(*fd);
    return "";
  }

  Result<void> attach(const std::filesystem::path& cgroupDir, const std::vector<bpf_insn>& program) override {
    Result<int> loaded = loadProgram(program);
    if (!loaded.ok()) return Failure{loaded.error()};
    Fd programFd(*loaded);
    Fd cgroupFd(::open(cgroupDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (cgroupFd.get() < 0) {
      return fail(ErrorCode::Internal, describeErrno("opening cgroup " + cgroupDir.string(), errno));
    }
    bpf_attr attr{};
    attr.target_fd = static_cast<std::uint32_t>(cgroupFd.get());
    attr.attach_bpf_fd = static_cast<std::uint32_t>(programFd.get());
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = 0;  // one program, replaced on a retried prepare; no override below
    if (bpf(BPF_PROG_ATTACH, attr) != 0) {
      return fail(ErrorCode::Internal, describeErrno("attaching the device program to " + cgroupDir.string(), errno));
    }
    return {};  // the attachment holds the program; our fd may go
  }
};

}  // namespace

std::shared_ptr<DeviceProgramLoader> kernelDeviceProgramLoader() {
  return std::make_shared<KernelDeviceProgramLoader>();
}

}  // namespace bai::core
