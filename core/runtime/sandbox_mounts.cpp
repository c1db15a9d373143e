#include "runtime/sandbox_mounts.hpp"

#include "runtime/atomic_file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <string>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <utility>

namespace bai::core::sandbox {
namespace {

using std::filesystem::path;

Failure<Error> failed(const std::string& what, int errnum) {
  return fail(ErrorCode::Internal, describeErrno(what, errnum));
}

// A descriptor closed on every path out, so that a failed step leaks nothing to the command.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Mount calls take paths: this one names exactly the opened file, whatever its name.
  std::string procPath() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

// Opens `target` as if the new root were "/": an absolute symlink in it (say, one the
// session left in its work dir) resolves inside the sandbox, never to the host's tree.
int openInRoot(int root, const path& target, int flags) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_PATH | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, root, target.c_str(), &how, sizeof how));
}

enum class Kind { Directory, File };

// Opens `target` in the new root; with `create`, makes it (and its missing parents) first.
// Creation fails with EROFS on the read-only host view, which is the intended limit.
Result<Fd> openTarget(int root, const path& target, Kind kind, bool create, const std::string& what) {
  int fd = openInRoot(root, target, kind == Kind::Directory ? O_DIRECTORY : 0);
  if (fd >= 0) return Fd(fd);
  if (errno != ENOENT || !create) return failed(what + " " + target.string(), errno);
  Fd parent(openInRoot(root, "/", O_DIRECTORY));
  path walked = "/";
  for (auto component = std::next(target.begin()); component != target.end(); ++component) {
    walked /= *component;
    const bool last = std::next(component) == target.end();
    Fd next(openInRoot(root, walked, last && kind == Kind::File ? 0 : O_DIRECTORY));
    if (next.get() < 0 && errno == ENOENT) {
      // mknodat and mkdirat never follow a symlink at the name they create.
      int made = last && kind == Kind::File ? ::mknodat(parent.get(), component->c_str(), S_IFREG | 0644, 0)
                                            : ::mkdirat(parent.get(), component->c_str(), 0755);
      if (made != 0 && errno != EEXIST) {
        return fail(ErrorCode::Internal,
                    what + " " + target.string() + ": cannot create it (" + std::strerror(errno) + ")");
      }
      next = Fd(openInRoot(root, walked, last && kind == Kind::File ? 0 : O_DIRECTORY));
    }
    if (next.get() < 0) return failed(what + " " + target.string(), errno);
    parent = std::move(next);
  }
  return parent;
}

Result<void> setAttributes(int fd, std::uint64_t attributes, const std::string& what) {
  mount_attr attr{};
  attr.attr_set = attributes;
  if (::mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0) return failed(what, errno);
  return {};
}

// Binds the host file `source` (opened before) over `target`, then sets `attributes` on
// the new mount (found by opening the target again: the old descriptor names what is under it).
Result<void> bindOver(int root, const Fd& source, const path& target, Kind kind, bool create,
                      std::uint64_t attributes, const std::string& what) {
  Result<Fd> opened = openTarget(root, target, kind, create, what);
  if (!opened.ok()) return Failure{opened.error()};
  if (::mount(source.procPath().c_str(), opened->procPath().c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return failed(what + " " + target.string() + ": binding", errno);
  }
  if (attributes == 0) return {};
  Fd mounted(openInRoot(root, target, 0));
  if (mounted.get() < 0) return failed(what + " " + target.string(), errno);
  return setAttributes(mounted.get(), attributes, what + " " + target.string() + ": setting its mount flags");
}

Result<void> mountFilesystem(int root, const path& target, const char* type, unsigned long flags,
                             const char* options) {
  Result<Fd> opened = openTarget(root, target, Kind::Directory, /*create=*/true, std::string(type) + " at");
  if (!opened.ok()) return Failure{opened.error()};
  if (::mount(type, opened->procPath().c_str(), type, flags, options) != 0) {
    return failed(std::string("mounting ") + type + " at " + target.string(), errno);
  }
  return {};
}

// Files of /proc that write to the kernel as a whole, checked against uid 0 rather than a
// capability: read-only, so that a root session (uid 0, no capabilities) cannot reach them.
Result<void> protectProc(int root) {
  for (const char* kernelWide : {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"}) {
    Fd target(openInRoot(root, kernelWide, 0));
    if (target.get() < 0 && errno == ENOENT) continue;
    if (target.get() < 0) return failed(std::string("protecting ") + kernelWide, errno);
    if (Result<void> bound = bindOver(root, target, kernelWide, Kind::File, /*create=*/false,
                                      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                                      "protecting");
        !bound.ok()) {
      return bound;
    }
  }
  return {};
}

Result<Fd> openHostDevice(const DeviceNode& node) {
  Fd source(::open(node.path.c_str(), O_PATH | O_CLOEXEC));
  struct stat info {};
  if (source.get() < 0 || ::fstat(source.get(), &info) != 0) return failed("device " + node.path.string(), errno);
  const bool typeMatches = node.type == 'c' ? S_ISCHR(info.st_mode) : S_ISBLK(info.st_mode);
  if (!typeMatches || ::major(info.st_rdev) != node.major || ::minor(info.st_rdev) != node.minor) {
    return fail(ErrorCode::InvalidArgument, "device " + node.path.string() + ": the host's node is not " +
                                                std::string(1, node.type) + " " + std::to_string(node.major) + ":" +
                                                std::to_string(node.minor));
  }
  return source;
}

// A device is bound at its own path; under /dev its file (and parents) are made in the
// /dev tmpfs, elsewhere the path must exist in the host's view.
Result<void> bindDevice(int root, const DeviceNode& node) {
  Result<Fd> source = openHostDevice(node);
  if (!source.ok()) return Failure{source.error()};
  const bool inDev = node.path.string().starts_with("/dev/");
  return bindOver(root, *source, node.path, Kind::File, inDev, 0, "device");
}

Result<void> linkIn(int root, const path& dir, const char* target, const char* name) {
  Fd parent(openInRoot(root, dir, O_DIRECTORY));
  if (parent.get() < 0 || ::symlinkat(target, parent.get(), name) != 0) {
    return failed("linking " + (dir / name).string(), errno);
  }
  return {};
}

Result<void> buildDev(int root, const Sandbox& sandbox) {
  if (auto dev = mountFilesystem(root, "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m"); !dev.ok()) {
    return dev;
  }
  for (const DeviceNode& node : baseDeviceNodes()) {
    if (Result<void> bound = bindDevice(root, node); !bound.ok()) return bound;
  }
  if (auto pts = mountFilesystem(root, "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                                 "newinstance,ptmxmode=0666,mode=0620");
      !pts.ok()) {
    return pts;
  }
  if (auto shm = mountFilesystem(root, "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"); !shm.ok()) return shm;
  for (auto [target, name] : {std::pair{"pts/ptmx", "ptmx"}, std::pair{"/proc/self/fd", "fd"},
                              std::pair{"/proc/self/fd/0", "stdin"}, std::pair{"/proc/self/fd/1", "stdout"},
                              std::pair{"/proc/self/fd/2", "stderr"}}) {
    if (Result<void> linked = linkIn(root, "/dev", target, name); !linked.ok()) return linked;
  }
  for (const DeviceNode& node : sandbox.devices) {
    if (Result<void> bound = bindDevice(root, node); !bound.ok()) return bound;
  }
  return {};
}

Result<void> buildHome(int root, const Sandbox& sandbox) {
  if (auto home = mountFilesystem(root, "/home", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k"); !home.ok()) {
    return home;
  }
  Fd work(::open(sandbox.workDir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (work.get() < 0) return failed("work dir " + sandbox.workDir.string(), errno);
  return bindOver(root, work, kSessionHome, Kind::Directory, /*create=*/true, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                  "work dir at");
}

// A hidden dir becomes an empty read-only tmpfs, a hidden file the host's /dev/null
// (read-only); a path the host does not have needs no mask.
Result<void> hide(int root, const path& hidden) {
  Fd target(openInRoot(root, hidden, 0));
  if (target.get() < 0 && errno == ENOENT) return {};
  struct stat info {};
  if (target.get() < 0 || ::fstat(target.get(), &info) != 0) return failed("hiding " + hidden.string(), errno);
  if (S_ISDIR(info.st_mode)) {
    if (::mount("tmpfs", target.procPath().c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=0555,size=4k") != 0) {
      return failed("hiding " + hidden.string(), errno);
    }
    return {};
  }
  Fd devNull(::open("/dev/null", O_PATH | O_CLOEXEC));
  return bindOver(root, devNull, hidden, Kind::File, /*create=*/false, MOUNT_ATTR_RDONLY, "hiding");
}

Result<void> bindMount(int root, const BindMount& mount, bool hostNodev) {
  Fd source(::open(mount.source.c_str(), O_PATH | O_CLOEXEC));
  struct stat info {};
  if (source.get() < 0 || ::fstat(source.get(), &info) != 0) return failed("mount source " + mount.source.string(), errno);
  std::uint64_t attributes = MOUNT_ATTR_NOSUID | (mount.readOnly ? MOUNT_ATTR_RDONLY : 0) |
                             (hostNodev ? MOUNT_ATTR_NODEV : 0);
  return bindOver(root, source, mount.target, S_ISDIR(info.st_mode) ? Kind::Directory : Kind::File,
                  /*create=*/true, attributes, "mount target");
}

Result<void> prepareRootDir(const path& rootDir) {
  if (::mkdir(rootDir.c_str(), 0700) != 0 && errno != EEXIST) return failed("creating " + rootDir.string(), errno);
  struct stat info {};
  if (::lstat(rootDir.c_str(), &info) != 0) return failed(rootDir.string(), errno);
  if (!S_ISDIR(info.st_mode)) return fail(ErrorCode::InvalidArgument, rootDir.string() + ": not a directory");
  if (::chown(rootDir.c_str(), 0, 0) != 0 || ::chmod(rootDir.c_str(), 0700) != 0) {
    return failed("securing " + rootDir.string(), errno);
  }
  return {};
}

// The host's tree, read-only and nosuid (nodev when no cgroup fences devices), at rootDir.
Result<Fd> bindHostRoot(const path& rootDir, bool hostNodev) {
  if (::mount("/", rootDir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return failed("binding / at " + rootDir.string(), errno);
  }
  Fd root(::open(rootDir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0) return failed(rootDir.string(), errno);
  std::uint64_t attributes = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | (hostNodev ? MOUNT_ATTR_NODEV : 0);
  if (Result<void> set = setAttributes(root.get(), attributes, "making the host's / read-only"); !set.ok()) {
    return Failure{set.error()};
  }
  return root;
}

Result<void> pivotInto(const path& rootDir) {
  if (::chdir(rootDir.c_str()) != 0) return failed("entering " + rootDir.string(), errno);
  // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves the new.
  // The detach waits for an RCU grace period. Moving the new root over / and chroot-ing
  // instead (as switch_root does) measured no faster in bench_isolation, and would leave
  // the host's tree under the session's root, guarded only by the missing CAP_SYS_CHROOT.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return failed("pivot_root into " + rootDir.string(), errno);
  if (::umount2(".", MNT_DETACH) != 0) return failed("detaching the old root", errno);
  if (::chdir("/") != 0) return failed("entering the new root", errno);
  return {};
}

}  // namespace

Result<void> enterSandbox(const Sandbox& sandbox, const path& rootDir) {
  if (::unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) != 0) return failed("unshare", errno);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) return failed("making / a slave mount", errno);
  if (Result<void> prepared = prepareRootDir(rootDir); !prepared.ok()) return prepared;
  Result<Fd> root = bindHostRoot(rootDir, sandbox.hostNodev);
  if (!root.ok()) return Failure{root.error()};
  const int rootFd = root->get();
  if (auto proc = mountFilesystem(rootFd, "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr); !proc.ok()) {
    return proc;
  }
  if (Result<void> protectedProc = protectProc(rootFd); !protectedProc.ok()) return protectedProc;
  if (Result<void> dev = buildDev(rootFd, sandbox); !dev.ok()) return dev;
  if (auto tmp = mountFilesystem(rootFd, "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"); !tmp.ok()) return tmp;
  if (Result<void> home = buildHome(rootFd, sandbox); !home.ok()) return home;
  for (const path& hidden : sandbox.hidden) {
    if (Result<void> masked = hide(rootFd, hidden); !masked.ok()) return masked;
  }
  for (const BindMount& mount : sandbox.mounts) {
    if (Result<void> bound = bindMount(rootFd, mount, sandbox.hostNodev); !bound.ok()) return bound;
  }
  return pivotInto(rootDir);
}

}  // namespace bai::core::sandbox
