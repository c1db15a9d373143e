#include "posix_acl.hpp"

#include "runtime/atomic_file.hpp"
#include "tree_walk.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>

namespace bai::storage {

using core::describeErrno;
using storage_protocol::Permission;

namespace {

// linux/posix_acl_xattr.h and linux/posix_acl.h (not every distribution installs them).
constexpr std::uint32_t kAclXattrVersion = 2;
constexpr std::uint16_t kTagUserObj = 0x01, kTagUser = 0x02, kTagGroupObj = 0x04, kTagMask = 0x10, kTagOther = 0x20;
constexpr std::uint32_t kUndefinedId = 0xffffffffu;
constexpr const char* kAccessXattr = "system.posix_acl_access";
constexpr const char* kDefaultXattr = "system.posix_acl_default";

// The xattr is little-endian on every architecture.
void putLittleEndian(std::string& out, std::uint32_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xffu));
}

void putEntry(std::string& out, std::uint16_t tag, std::uint16_t perm, std::uint32_t id) {
  putLittleEndian(out, tag, 2);
  putLittleEndian(out, perm, 2);
  putLittleEndian(out, id, 4);
}

std::uint16_t sharedPermission(mode_t mode, bool directory, Permission permission) {
  std::uint16_t perm = 4;
  if (permission == Permission::ReadWrite) perm |= 2;
  if (directory || (mode & S_IXUSR) != 0) perm |= 1;
  return perm;
}

Result<void> removeAclXattr(int fd, const char* name) {
  if (fremovexattr(fd, name) == 0 || errno == ENODATA) return {};
  return fail(ErrorCode::Internal, describeErrno(std::string("remove ") + name, errno));
}

Result<void> setAclXattr(int fd, const char* name, const std::string& value) {
  if (fsetxattr(fd, name, value.data(), value.size(), 0) == 0) return {};
  return fail(ErrorCode::Internal, describeErrno(std::string("set ") + name, errno));
}

}  // namespace

std::string aclXattrValue(mode_t mode, bool directory, const FolderShares& shares) {
  std::string out;
  putLittleEndian(out, kAclXattrVersion, 4);
  const auto group = static_cast<std::uint16_t>((mode >> 3) & 7);
  putEntry(out, kTagUserObj, static_cast<std::uint16_t>((mode >> 6) & 7), kUndefinedId);
  std::uint16_t mask = group;
  for (const auto& [uid, permission] : shares) {  // a std::map: sorted by uid, as the kernel wants
    const std::uint16_t perm = sharedPermission(mode, directory, permission);
    mask |= perm;
    putEntry(out, kTagUser, perm, uid);
  }
  putEntry(out, kTagGroupObj, group, kUndefinedId);
  putEntry(out, kTagMask, mask, kUndefinedId);
  putEntry(out, kTagOther, static_cast<std::uint16_t>(mode & 7), kUndefinedId);
  return out;
}

Result<void> applyFolderAcl(int fd, bool directory, const FolderShares& shares) {
  struct stat status {};
  if (fstat(fd, &status) != 0) return fail(ErrorCode::Internal, describeErrno("fstat", errno));
  if (shares.empty()) {
    if (auto removed = removeAclXattr(fd, kAccessXattr); !removed) return removed;
    if (directory) {
      if (auto removed = removeAclXattr(fd, kDefaultXattr); !removed) return removed;
    }
    // Without an ACL the group's bits are the group's again, no longer the mask.
    if ((status.st_mode & 070) != 0 && fchmod(fd, status.st_mode & 07707) != 0) {
      return fail(ErrorCode::Internal, describeErrno("chmod", errno));
    }
    return {};
  }
  // The group's bits of a file with an ACL are its mask: the owner's group keeps nothing.
  const mode_t mode = status.st_mode & 0707;
  if (auto set = setAclXattr(fd, kAccessXattr, aclXattrValue(mode, directory, shares)); !set) return set;
  // New entries in a directory inherit rwx for the owner and nothing for others.
  return directory ? setAclXattr(fd, kDefaultXattr, aclXattrValue(0700, true, shares)) : Result<void>{};
}

Result<void> applyFolderAclTree(int dirFd, const FolderShares& shares) {
  if (auto root = applyFolderAcl(dirFd, true, shares); !root) return root;
  return walkTree(dirFd, [&](int parentFd, const char* name, const struct stat& status) -> Result<void> {
    const bool directory = S_ISDIR(status.st_mode);
    if (!directory && !S_ISREG(status.st_mode)) return {};
    // O_PATH never opens the file itself (no side effect of opening); O_NOFOLLOW keeps a
    // symlink swapped in since the lstat from being followed. xattrs then go through
    // /proc/self/fd, which names exactly that inode.
    const int fd = openat(parentFd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? Result<void>{} : fail(ErrorCode::Internal, describeErrno(std::string("open ") + name, errno));
    UniqueFd pathFd(fd);
    struct stat now {};
    if (fstat(fd, &now) != 0 || (S_ISDIR(now.st_mode) != directory) || (!directory && !S_ISREG(now.st_mode))) return {};
    const std::string procPath = "/proc/self/fd/" + std::to_string(fd);
    const int real = open(procPath.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (real < 0) return fail(ErrorCode::Internal, describeErrno(std::string("reopen ") + name, errno));
    UniqueFd file(real);
    return applyFolderAcl(file.get(), directory, shares);
  });
}

}  // namespace bai::storage
