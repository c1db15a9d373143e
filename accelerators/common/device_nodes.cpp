#include "device_nodes.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdint>

namespace bai::accel {

nlohmann::json deviceNodeEntry(const std::string& path) {
  nlohmann::json entry = {{"path", path}};
  struct stat node{};
  if (::stat(path.c_str(), &node) != 0 || !(S_ISCHR(node.st_mode) || S_ISBLK(node.st_mode))) return entry;
  entry["type"] = S_ISCHR(node.st_mode) ? "c" : "b";
  entry["major"] = static_cast<std::uint32_t>(major(node.st_rdev));
  entry["minor"] = static_cast<std::uint32_t>(minor(node.st_rdev));
  return entry;
}

bool nodeExists(const std::string& path) {
  struct stat node{};
  return ::stat(path.c_str(), &node) == 0;
}

}  // namespace bai::accel
