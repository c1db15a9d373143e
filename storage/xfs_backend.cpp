// The xfs back end: each folder is an XFS project (its directory tagged with a project id
// that new entries inherit) with a hard block limit, so the kernel holds the quota for
// sessions' writes too. Needs the volume mounted with -o prjquota (checked at start).
#include "runtime/atomic_file.hpp"
#include "tree_walk.hpp"
#include "volume_backend.hpp"

#include <fcntl.h>
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/quota.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace bai::storage {

using core::describeErrno;

namespace {

constexpr std::uint32_t kFirstProjectId = 1000;  // below: left to the host's own projects
constexpr const char* kProjectIdKey = "xfs_project_id";

// The block device mounted where `root` lives, from /proc/self/mountinfo.
Result<std::string> blockDeviceOf(const std::filesystem::path& root) {
  struct stat status {};
  if (stat(root.c_str(), &status) != 0) return fail(ErrorCode::InvalidArgument, describeErrno(root.string(), errno));
  const std::string wanted = std::to_string(major(status.st_dev)) + ":" + std::to_string(minor(status.st_dev));
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, field;
    fields >> id >> parent >> device;
    if (device != wanted) continue;
    while (fields >> field && field != "-") {
    }
    std::string type, source;
    fields >> type >> source;
    if (!source.empty()) return source;
  }
  return fail(ErrorCode::InvalidArgument, root.string() + ": no mount of device " + wanted + " in /proc/self/mountinfo");
}

Result<std::uint32_t> projectIdOf(const FolderAttributes& attributes) {
  const auto found = attributes.find(kProjectIdKey);
  if (found == attributes.end()) return fail(ErrorCode::Internal, "the folder's metadata has no " + std::string(kProjectIdKey));
  try {
    return static_cast<std::uint32_t>(std::stoul(found->second));
  } catch (const std::exception&) {
    return fail(ErrorCode::Internal, "the folder's " + std::string(kProjectIdKey) + " is not a number");
  }
}

// The next free project id of the volume, kept in R/.bai/xfs-next-project under a lock,
// since several proxies' threads (or a restarted proxy) may create folders at once.
Result<std::uint32_t> allocateProjectId(const std::filesystem::path& root) {
  const auto file = root / ".bai" / "xfs-next-project";
  const int fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail(ErrorCode::Internal, describeErrno("open " + file.string(), errno));
  UniqueFd guard(fd);
  if (flock(fd, LOCK_EX) != 0) return fail(ErrorCode::Internal, describeErrno("lock " + file.string(), errno));
  char text[32] = {};
  const ssize_t got = pread(fd, text, sizeof text - 1, 0);
  std::uint32_t next = got > 0 ? static_cast<std::uint32_t>(std::strtoul(text, nullptr, 10)) : 0;
  if (next < kFirstProjectId) next = kFirstProjectId;
  const std::string after = std::to_string(next + 1) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, after.data(), after.size(), 0) != static_cast<ssize_t>(after.size())) {
    return fail(ErrorCode::Internal, describeErrno("write " + file.string(), errno));
  }
  return next;
}

// Tags the directory with the project, inherited by what is made in it from now on.
Result<void> setProject(const std::filesystem::path& dir, std::uint32_t projectId) {
  auto folder = openDirectoryAt(AT_FDCWD, dir.c_str());
  if (!folder) return Failure{folder.error()};
  fsxattr attributes{};
  if (ioctl(folder->get(), FS_IOC_FSGETXATTR, &attributes) != 0) {
    return fail(ErrorCode::Internal, describeErrno("FS_IOC_FSGETXATTR " + dir.string(), errno));
  }
  attributes.fsx_projid = projectId;
  attributes.fsx_xflags |= FS_XFLAG_PROJINHERIT;
  if (ioctl(folder->get(), FS_IOC_FSSETXATTR, &attributes) != 0) {
    return fail(ErrorCode::Internal, describeErrno("FS_IOC_FSSETXATTR " + dir.string(), errno));
  }
  return {};
}

class XfsBackend final : public VolumeBackend {
 public:
  std::string name() const override { return "xfs"; }
  bool kernelQuota() const override { return true; }

  Result<void> check(const std::filesystem::path& root) override {
    struct statfs info {};
    if (statfs(root.c_str(), &info) != 0) return fail(ErrorCode::InvalidArgument, describeErrno(root.string(), errno));
    if (info.f_type != XFS_SUPER_MAGIC) {
      return fail(ErrorCode::InvalidArgument, root.string() + " is not on an XFS file system (backend xfs)");
    }
    auto device = blockDeviceOf(root);
    if (!device) return Failure{device.error()};
    fs_quota_statv statv{};
    statv.qs_version = FS_QSTATV_VERSION1;
    const bool enforced = quotactl(QCMD(Q_XGETQSTATV, PRJQUOTA), device->c_str(), 0, reinterpret_cast<caddr_t>(&statv)) == 0 &&
                          (statv.qs_flags & FS_QUOTA_PDQ_ENFD) != 0;
    if (!enforced) {
      return fail(ErrorCode::InvalidArgument, root.string() + " (" + *device +
                                                  ") has no enforced XFS project quotas: mount it with -o prjquota");
    }
    device_ = *device;
    return {};
  }

  // Both directories get the project: XFS refuses (EXDEV) to rename a file into a project
  // directory from outside the project, and partial uploads then count against the quota.
  Result<FolderAttributes> prepareFolder(const std::filesystem::path& root, const std::filesystem::path& dir,
                                         const std::filesystem::path& stagingDir) override {
    auto projectId = allocateProjectId(root);
    if (!projectId) return Failure{projectId.error()};
    for (const auto& tagged : {dir, stagingDir}) {
      if (auto set = setProject(tagged, *projectId); !set) return Failure{set.error()};
    }
    return FolderAttributes{{kProjectIdKey, std::to_string(*projectId)}};
  }

  Result<void> applyQuota(const std::filesystem::path&, const FolderAttributes& attributes,
                          std::optional<std::uint64_t> quotaBytes) override {
    auto projectId = projectIdOf(attributes);
    if (!projectId) return Failure{projectId.error()};
    fs_disk_quota quota{};
    quota.d_version = FS_DQUOT_VERSION;
    quota.d_flags = FS_PROJ_QUOTA;
    quota.d_id = *projectId;
    quota.d_fieldmask = FS_DQ_BHARD | FS_DQ_BSOFT;
    // In 512-byte basic blocks, rounded up so that a quota is never below what was asked.
    quota.d_blk_hardlimit = quotaBytes ? (*quotaBytes + 511) / 512 : 0;
    quota.d_blk_softlimit = quota.d_blk_hardlimit;
    if (quotactl(QCMD(Q_XSETQLIM, PRJQUOTA), device_.c_str(), static_cast<int>(*projectId), reinterpret_cast<caddr_t>(&quota)) != 0) {
      return fail(ErrorCode::Internal, describeErrno("Q_XSETQLIM project " + std::to_string(*projectId), errno));
    }
    return {};
  }

  Result<FolderUsage> measure(const std::filesystem::path&, const FolderAttributes& attributes) override {
    auto projectId = projectIdOf(attributes);
    if (!projectId) return Failure{projectId.error()};
    fs_disk_quota quota{};
    if (quotactl(QCMD(Q_XGETQUOTA, PRJQUOTA), device_.c_str(), static_cast<int>(*projectId), reinterpret_cast<caddr_t>(&quota)) != 0) {
      return fail(ErrorCode::Internal, describeErrno("Q_XGETQUOTA project " + std::to_string(*projectId), errno));
    }
    // The kernel counts blocks and inodes (directories too): what the quota limits.
    return FolderUsage{quota.d_bcount * 512, quota.d_icount};
  }

  Result<void> release(const std::filesystem::path& dir, const FolderAttributes& attributes) override {
    return applyQuota(dir, attributes, std::nullopt);
  }

 private:
  std::string device_;  // set once by check(), before any other call
};

}  // namespace

std::unique_ptr<VolumeBackend> makeXfsBackend() { return std::make_unique<XfsBackend>(); }

}  // namespace bai::storage
