#include "runtime/sandbox_privileges.hpp"

#include "runtime/atomic_file.hpp"

#include <cerrno>
#include <grp.h>
#include <linux/capability.h>
#include <string>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace bai::core::sandbox {
namespace {

Failure<Error> failed(const std::string& what, int errnum) {
  return fail(ErrorCode::Internal, describeErrno(what, errnum));
}

// Up to the kernel's last capability, whatever this build's headers know: EINVAL ends it.
Result<void> dropBoundingSet() {
  for (int capability = 0;; ++capability) {
    if (::prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) == 0) continue;
    if (errno == EINVAL) return {};
    return failed("dropping capability " + std::to_string(capability) + " from the bounding set", errno);
  }
}

Result<void> clearCapabilitySets() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3]{};
  if (::syscall(SYS_capset, &header, none) != 0) return failed("clearing the capability sets", errno);
  return {};
}

}  // namespace

Result<void> dropAllPrivileges(uid_t uid, gid_t gid) {
  // The bounding set first: dropping from it needs CAP_SETPCAP, which setuid takes away.
  if (Result<void> bounded = dropBoundingSet(); !bounded.ok()) return bounded;
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return failed("clearing ambient capabilities", errno);
  if (::setgroups(0, nullptr) != 0) return failed("setgroups", errno);
  if (::setgid(gid) != 0) return failed("setgid " + std::to_string(gid), errno);
  if (::setuid(uid) != 0) return failed("setuid " + std::to_string(uid), errno);
  if (Result<void> cleared = clearCapabilitySets(); !cleared.ok()) return cleared;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return failed("PR_SET_NO_NEW_PRIVS", errno);
  return {};
}

}  // namespace bai::core::sandbox
