// VfolderService's part in a session's submission: the folders it asks to mount, each
// resolved for its owner as the folder routes resolve a ref, into what the agent binds.
#include "vfolder_service.hpp"

#include <set>

namespace bai::manager {

Outcome<std::vector<SessionMount>> VfolderService::resolveMounts(const Caller& caller, const std::vector<MountRequest>& requests) {
  if (requests.size() > protocol::kMaxFolderMounts) {
    return refuse(ErrorKind::InvalidRequest, "a session mounts at most " + std::to_string(protocol::kMaxFolderMounts) +
                                                 " folders, not " + std::to_string(requests.size()), "mounts");
  }
  std::vector<SessionMount> mounts;
  std::set<std::string> targets;
  for (const MountRequest& request : requests) {
    auto folder = resolve(caller, request.folder);
    if (!folder) return Failure{folder.error()};
    std::string target = request.target.value_or(std::string(protocol::kMountTargetRoot) + "/" + folder->record.name);
    while (target.size() > 1 && target.back() == '/') target.pop_back();
    if (!protocol::isMountTarget(target)) {
      return refuse(ErrorKind::InvalidRequest, "mount target '" + target + "' of folder '" + request.folder +
                                                   "' is not a path below " + std::string(protocol::kMountTargetRoot), "mounts");
    }
    if (!targets.insert(target).second) {
      return refuse(ErrorKind::InvalidRequest, "two folders are mounted at '" + target + "'", "mounts");
    }
    // A read-only share is read-only in the session too, whatever the request says.
    const bool readOnly = request.readOnly || folder->access == VfolderAccess::ReadOnly;
    mounts.push_back(SessionMount{{folder->record.id, folder->record.hostPath, target, readOnly}, folder->record.name});
  }
  return mounts;
}

}  // namespace bai::manager
