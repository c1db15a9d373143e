// Paths as the transfers handle them: remote paths inside a folder ('/'-separated,
// relative to its root), the proxy's request targets, and local names. Internal.
#pragma once

#include <bai/client.hpp>

#include "http_client.hpp"

#include <filesystem>
#include <string>

namespace bai::client_internal {

inline Failure<client::ApiError> transferFailure(const std::string& type, const std::string& detail) {
  return Failure<client::ApiError>{client::ApiError{0, type, "Transfer failed", detail}};
}

// "/data/" -> "data", "." -> "" (the folder's root); the proxy checks the rest.
inline std::string trimRemote(std::string path) {
  while (!path.empty() && path.back() == '/') path.pop_back();
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  return path == "." ? std::string() : path;
}

inline std::string joinRemote(const std::string& base, const std::string& name) {
  if (name.empty() || name == ".") return base;
  return base.empty() ? name : base + "/" + name;
}

// The last component of a remote path ("" for the root).
inline std::string remoteName(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// The name a local path gives its copy: "dir/" and "dir/." are "dir".
inline std::string localName(const std::filesystem::path& local) {
  std::filesystem::path clean = std::filesystem::absolute(local).lexically_normal();
  if (!clean.has_filename()) clean = clean.parent_path();
  return clean.filename().string();
}

inline std::string remoteTarget(const std::string& route, const std::string& path) {
  return route + "?path=" + http::urlEncode(path);
}

// A path the server listed, made relative to `root`, only when it stays below it: no
// "..", ".", empty or absolute component may lead a download outside its directory.
inline bool relativeBelow(const std::string& path, const std::string& root, std::string& relative) {
  if (root.empty()) {
    relative = path;
  } else if (path.size() > root.size() && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/') {
    relative = path.substr(root.size() + 1);
  } else {
    return false;
  }
  for (std::size_t begin = 0; begin <= relative.size();) {
    const std::size_t end = std::min(relative.find('/', begin), relative.size());
    const std::string name = relative.substr(begin, end - begin);
    if (name.empty() || name == "." || name == "..") return false;
    begin = end + 1;
  }
  return true;
}

}  // namespace bai::client_internal
