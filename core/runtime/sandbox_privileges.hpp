// The last step before a sandboxed command execs: become the session's user with no way
// back to more privileges.
#pragma once

#include "bai/result.hpp"

#include <sys/types.h>

namespace bai::core::sandbox {

// Drops every capability from the bounding and ambient sets, becomes uid/gid with no
// supplementary groups, clears the effective, permitted and inheritable sets (a uid 0
// "root session" keeps none either) and sets no_new_privs, so that no setuid file or
// file capability gives any of it back. Needs to run as root; the message names the step.
Result<void> dropAllPrivileges(uid_t uid, gid_t gid);

}  // namespace bai::core::sandbox
