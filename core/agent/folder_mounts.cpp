#include "agent/folder_mounts.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sys/stat.h>

namespace bai::core {
namespace {

namespace fs = std::filesystem;

// `path` equals `root` or lies below it, compared by whole components.
bool isBelow(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing '/' of the root
    if (p == path.end() || *p != *r) return false;
  }
  return p != path.end();
}

Result<BindMount> folderBind(const protocol::FolderMount& mount, const std::vector<fs::path>& roots) {
  const std::string where = "folder " + mount.folderId + " (" + mount.source + ")";
  const fs::path source(mount.source);
  if (!source.is_absolute()) return fail(ErrorCode::InvalidArgument, where + ": not an absolute path");
  std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(mount.source.c_str(), nullptr), &std::free);
  if (!resolved) return fail(ErrorCode::NotFound, where + ": " + std::strerror(errno));
  if (fs::path(resolved.get()) != source.lexically_normal()) {
    return fail(ErrorCode::InvalidArgument, where + ": goes through a symlink (it is " + resolved.get() + ")");
  }
  struct stat info {};
  if (::stat(resolved.get(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    return fail(ErrorCode::InvalidArgument, where + ": not a directory");
  }
  for (const fs::path& root : roots) {
    if (isBelow(source.lexically_normal(), root)) return BindMount{source.lexically_normal(), mount.target, mount.readOnly};
  }
  return fail(ErrorCode::InvalidArgument, where + ": not below any of this agent's [storage] mount-roots");
}

}  // namespace

Result<std::vector<BindMount>> folderBinds(const std::vector<protocol::FolderMount>& mounts,
                                           const std::vector<fs::path>& roots) {
  std::vector<BindMount> binds;
  if (mounts.empty()) return binds;
  if (roots.empty()) {
    return fail(ErrorCode::InvalidArgument,
                "this agent mounts no storage folders: its [storage] mount-roots is empty");
  }
  for (const protocol::FolderMount& mount : mounts) {
    auto bind = folderBind(mount, roots);
    if (!bind) return Failure{bind.error()};
    binds.push_back(std::move(*bind));
  }
  return binds;
}

}  // namespace bai::core
