// The file operations the limits back ends perform on a cgroup filesystem. The kernel's
// cgroupfs creates control files on mkdir, refuses rmdir while processes remain and
// reacts to writes; tests replace it with a fake kernel over a temp dir (the lowest seam).
#pragma once

#include "bai/result.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bai::core {

class CgroupFs {
 public:
  virtual ~CgroupFs() = default;

  virtual bool exists(const std::filesystem::path& path) const = 0;
  virtual bool writable(const std::filesystem::path& dir) const = 0;
  virtual Result<std::string> read(const std::filesystem::path& file) const = 0;
  // The file must exist: control files are created by the kernel, never by us.
  virtual Result<void> write(const std::filesystem::path& file, std::string_view value) = 0;
  // A dir that exists already is fine (a retried prepare reuses it).
  virtual Result<void> makeDir(const std::filesystem::path& dir) = 0;
  // A missing dir is fine; Conflict while the cgroup still holds processes or children.
  virtual Result<void> removeDir(const std::filesystem::path& dir) = 0;
  virtual std::vector<std::filesystem::path> subdirectories(const std::filesystem::path& dir) const = 0;
};

// The real cgroupfs, through plain system calls.
std::shared_ptr<CgroupFs> kernelCgroupFs();

}  // namespace bai::core
