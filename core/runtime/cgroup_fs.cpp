#include "runtime/cgroup_fs.hpp"

#include "runtime/atomic_file.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace bai::core {
namespace {

class KernelCgroupFs final : public CgroupFs {
 public:
  bool exists(const std::filesystem::path& path) const override { return ::access(path.c_str(), F_OK) == 0; }

  // access() also reports a read-only mount, which permission bits do not show to root.
  bool writable(const std::filesystem::path& dir) const override { return ::access(dir.c_str(), W_OK) == 0; }

  Result<std::string> read(const std::filesystem::path& file) const override { return readWholeFile(file); }

  Result<void> write(const std::filesystem::path& file, std::string_view value) override {
    int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail(ErrorCode::Internal, describeErrno("opening " + file.string(), errno));
    // Control files take one value per write(); a short write is an error, not a partial value.
    ssize_t written = ::write(fd, value.data(), value.size());
    int error = errno;
    ::close(fd);
    if (written != static_cast<ssize_t>(value.size())) {
      return fail(ErrorCode::Internal,
                  describeErrno("writing '" + std::string(value) + "' to " + file.string(), written < 0 ? error : EIO));
    }
    return {};
  }

  Result<void> makeDir(const std::filesystem::path& dir) override {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return fail(ErrorCode::Internal, describeErrno("creating cgroup " + dir.string(), errno));
    }
    return {};
  }

  Result<void> removeDir(const std::filesystem::path& dir) override {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return {};
    ErrorCode code = errno == EBUSY || errno == ENOTEMPTY ? ErrorCode::Conflict : ErrorCode::Internal;
    return fail(code, describeErrno("removing cgroup " + dir.string(), errno));
  }

  std::vector<std::filesystem::path> subdirectories(const std::filesystem::path& dir) const override {
    std::vector<std::filesystem::path> children;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
      if (entry.is_directory(error)) children.push_back(entry.path());
    }
    return children;
  }
};

}  // namespace

std::shared_ptr<CgroupFs> kernelCgroupFs() { return std::make_shared<KernelCgroupFs>(); }

}  // namespace bai::core
