#include "mount_spec.hpp"

namespace bai::cli {

Result<client::MountRequest> parseMountSpec(const std::string& spec) {
  const auto bad = [&](const std::string& why) {
    return fail(ErrorCode::InvalidArgument, "--mount '" + spec + "': " + why + " (NAME[:/path][:ro])");
  };
  client::MountRequest mount;
  std::size_t begin = 0;
  for (int index = 0; begin <= spec.size(); ++index) {
    const std::size_t end = std::min(spec.find(':', begin), spec.size());
    const std::string part = spec.substr(begin, end - begin);
    begin = end + 1;
    if (index == 0) {
      if (part.empty()) return bad("the folder's name is missing");
      mount.folder = part;
    } else if (!part.empty() && part.front() == '/') {
      if (!mount.target.empty()) return bad("two targets");
      if (index != 1) return bad("the target comes before ro");
      mount.target = part;
    } else if (part == "ro" || part == "rw") {
      if (begin <= spec.size()) return bad("'" + part + "' must come last");
      mount.readOnly = part == "ro";
    } else {
      return bad(part.empty() ? "an empty part" : "'" + part + "' is neither an absolute path nor ro/rw");
    }
  }
  return mount;
}

}  // namespace bai::cli
