// POSIX ACLs of a folder's files for the uids it is shared with, written straight into
// the kernel's xattrs (system.posix_acl_access, system.posix_acl_default) in the format of
// linux/posix_acl_xattr.h, so the proxy needs no libacl. Any thread; nothing shared.
#pragma once

#include <bai/result.hpp>
#include <bai/storage_protocol.hpp>

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

namespace bai::storage {

// The uids a folder is shared with and what each may do.
using FolderShares = std::map<std::uint32_t, storage_protocol::Permission>;

// The xattr value of an ACL: the owner's, group's and others' permission bits (rwx, 0-7)
// and one entry per shared uid (the mask is their union with the group's). A file's
// shared uids get r (and w for rw); a directory's r-x (rwx for rw); an executable file's
// x as well, so that a shared script still runs.
std::string aclXattrValue(mode_t mode, bool directory, const FolderShares& shares);

// Gives the open file or directory `fd` the ACL of `shares` (a directory the same as its
// default ACL, inherited by what sessions create in it), or no ACL when `shares` is empty.
Result<void> applyFolderAcl(int fd, bool directory, const FolderShares& shares);

// The same for the directory `dirFd` and every file and directory below it (symlinks are
// skipped, never followed; devices, FIFOs and sockets are left alone).
Result<void> applyFolderAclTree(int dirFd, const FolderShares& shares);

}  // namespace bai::storage
