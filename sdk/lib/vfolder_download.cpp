// downloadFromVfolder: a folder's files and directories to this machine through its
// storage proxy, each file through <dest>.bai-part so that a re-run resumes it.
#include <bai/vfolder_transfer.hpp>

#include "proxy_channel.hpp"
#include "transfer_paths.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace bai::client {
namespace {

namespace fs = std::filesystem;
using client_internal::ProxyChannel;
using client_internal::TransferRun;
using client_internal::proxyError;
using client_internal::remoteTarget;
using client_internal::transferFailure;

// The size of the file a part belongs to, kept on the part: a part of a file that has
// since changed size on the server is started over, not completed with other bytes.
constexpr const char* kPartSizeAttribute = "user.bai.size";
constexpr const char* kPartSuffix = ".bai-part";

ClientResult<std::vector<FileEntry>> listRemote(ProxyChannel& channel, const std::string& path, bool recursive) {
  auto response = channel.send({}, remoteTarget("/v1/list", path) + "&recursive=" + (recursive ? "1" : "0"));
  if (!response) return Failure{response.error()};
  if (response->status / 100 != 2) return Failure{proxyError(*response)};
  try {
    std::vector<FileEntry> out;
    const auto doc = nlohmann::json::parse(response->body);
    for (const auto& item : doc.at("entries")) {
      out.push_back({item.at("path").get<std::string>(), item.at("type").get<std::string>(),
                     item.value("size", std::uint64_t{0}), item.value("mode", std::uint32_t{0}),
                     item.value("modified_at_ms", std::int64_t{0})});
    }
    return out;
  } catch (const std::exception& e) {
    return transferFailure("invalid-reply", std::string("the proxy's listing: ") + e.what());
  }
}

// How far a part file got, when it belongs to a file of `size` bytes; else 0 (restart).
std::uint64_t resumableBytes(int fd, std::uint64_t size) {
  struct stat info {};
  if (::fstat(fd, &info) != 0 || static_cast<std::uint64_t>(info.st_size) > size) return 0;
  char text[24] = {};
  const ssize_t length = ::fgetxattr(fd, kPartSizeAttribute, text, sizeof text - 1);
  if (length <= 0 || std::to_string(size) != std::string(text, static_cast<std::size_t>(length))) return 0;
  return static_cast<std::uint64_t>(info.st_size);
}

class Downloader : private TransferRun {
 public:
  using TransferRun::TransferRun;

  ClientResult<void> download(const std::string& remote, std::uint64_t size, const fs::path& dest) {
    const fs::path part = dest.string() + kPartSuffix;
    const int fd = ::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return transferFailure("unwritable", part.string() + ": " + std::strerror(errno));
    auto done = fetch(fd, part, remote, size);
    if (done && ::fsync(fd) != 0) done = transferFailure("unwritable", part.string() + ": " + std::strerror(errno));
    if (done) ::fremovexattr(fd, kPartSizeAttribute);
    ::close(fd);
    if (!done) return done;
    std::error_code error;
    fs::rename(part, dest, error);
    if (error) return transferFailure("unwritable", dest.string() + ": " + error.message());
    ++summary_.files;
    ++progress_.filesDone;
    report();
    return {};
  }

 private:
  // Appends to the part from where it stands; a file whose size changed on the server
  // (a Content-Range total other than `size`, or 416) starts over once with its new size.
  ClientResult<void> fetch(int fd, const fs::path& part, const std::string& remote, std::uint64_t size) {
    for (int restarts = 0;; ++restarts) {
      std::uint64_t have = resumableBytes(fd, size);
      if (have == 0 && ::ftruncate(fd, 0) != 0) return transferFailure("unwritable", part.string() + ": " + std::strerror(errno));
      const std::string sizeText = std::to_string(size);
      ::fsetxattr(fd, kPartSizeAttribute, sizeText.data(), sizeText.size(), 0);  // no xattrs: no resume, still correct
      progress_.bytesDone += have;
      if (have == size) return {};
      std::optional<std::uint64_t> changedSize;
      std::string writeError;
      http::ClientRequest request;
      if (have > 0) request.headers["Range"] = "bytes=" + std::to_string(have) + "-";
      request.bodySink = [&](std::string_view piece, const http::ClientResponse& head) {
        if (!changedSize && head.status == 206) changedSize = rangeTotal(head, have);
        if (!changedSize && head.status == 200) changedSize = have == 0 ? size : 0;  // the whole file again
        if (*changedSize != size) return false;
        if (piece.size() > size - have) {
          writeError = "the proxy sent more than the file's " + std::to_string(size) + " bytes";
          return false;
        }
        if (::pwrite(fd, piece.data(), piece.size(), static_cast<off_t>(have)) != static_cast<ssize_t>(piece.size())) {
          writeError = std::string("cannot write: ") + std::strerror(errno);
          return false;
        }
        have += piece.size();
        moved(piece.size());
        return true;
      };
      auto response = channel_.send(std::move(request), remoteTarget("/v1/download", remote));
      if (!writeError.empty()) return transferFailure("download-failed", part.string() + ": " + writeError);
      const bool changed = (changedSize && *changedSize != size) || (response && response->status == 416);
      if (changed && restarts == 0) {
        progress_.bytesDone -= std::min(progress_.bytesDone, have);
        size = changedSize && *changedSize != 0 ? *changedSize : remoteSize(response ? &*response : nullptr, size);
        if (::ftruncate(fd, 0) != 0) return transferFailure("unwritable", part.string() + ": " + std::strerror(errno));
        continue;
      }
      if (!response) return Failure{response.error()};
      if (response->status / 100 != 2) return Failure{proxyError(*response)};
      if (have != size) {
        return transferFailure("incomplete", remote + ": the download ended at byte " + std::to_string(have) + " of " +
                                                 std::to_string(size) + " (run it again to resume)");
      }
      return {};
    }
  }

  // "bytes A-B/TOTAL" for a range from `start`: TOTAL; anything else: 0 (start over).
  static std::uint64_t rangeTotal(const http::ClientResponse& head, std::uint64_t start) {
    const auto it = head.headers.find("content-range");
    if (it == head.headers.end()) return 0;
    unsigned long long first = 0, last = 0, total = 0;
    if (std::sscanf(it->second.c_str(), "bytes %llu-%llu/%llu", &first, &last, &total) != 3 || first != start) return 0;
    return total;
  }
  // A 416's "bytes */SIZE": the file's size now.
  static std::uint64_t remoteSize(const http::ClientResponse* response, std::uint64_t fallback) {
    if (response == nullptr) return fallback;
    const auto it = response->headers.find("content-range");
    unsigned long long total = 0;
    if (it == response->headers.end() || std::sscanf(it->second.c_str(), "bytes */%llu", &total) != 1) return fallback;
    return total;
  }

};

}  // namespace

ClientResult<TransferSummary> downloadFromVfolder(const Client& client, const std::string& ref, const std::string& remoteIn,
                                                  const fs::path& localDir, const TransferOptions& options) {
  const std::string remote = client_internal::trimRemote(remoteIn);
  ProxyChannel channel(client, ref, TransferOperation::Download, remote, options.requestTimeout);
  if (auto opened = channel.open(); !opened) return Failure{opened.error()};
  auto top = listRemote(channel, remote, false);
  if (!top) return Failure{top.error()};
  const bool isFile = top->size() == 1 && top->front().path == remote && top->front().type == "file";
  const fs::path root = remote.empty() ? localDir : localDir / client_internal::remoteName(remote);
  TransferSummary summary;
  std::vector<FileEntry> entries;
  if (isFile) {
    entries = *top;
  } else {
    if (!options.recursive) return transferFailure("is-a-directory", (remote.empty() ? std::string("the folder's root") : remote) +
                                                                    " is a directory (use -r to download it)");
    auto all = listRemote(channel, remote, true);
    if (!all) return Failure{all.error()};
    entries = std::move(*all);
  }
  TransferProgress progress;
  std::vector<std::pair<FileEntry, fs::path>> files;
  std::error_code error;
  if (!isFile) {
    fs::create_directories(root, error);
    if (error) return transferFailure("unwritable", root.string() + ": " + error.message());
  }
  for (const FileEntry& entry : entries) {
    std::string relative;
    const bool below = isFile || client_internal::relativeBelow(entry.path, remote, relative);
    const fs::path dest = isFile ? root : root / relative;
    if (!below) {
      summary.skipped.push_back(entry.path + " (listed outside " + (remote.empty() ? "the folder" : remote) + ")");
    } else if (entry.type == "dir") {
      if (fs::create_directories(dest, error)) ++summary.directories;
      if (error) return transferFailure("unwritable", dest.string() + ": " + error.message());
    } else if (entry.type == "file") {
      files.emplace_back(entry, dest);
      progress.bytesTotal += entry.size;
    } else {
      summary.skipped.push_back(entry.path + " (a " + entry.type + " on the server: not downloaded)");
    }
  }
  progress.filesTotal = files.size();
  Downloader downloader(channel, options, progress, summary);
  for (const auto& [entry, dest] : files) {
    fs::create_directories(dest.parent_path(), error);
    if (auto done = downloader.download(entry.path, entry.size, dest); !done) {
      ApiError failure = done.error();
      failure.detail = entry.path + ": " + failure.detail;
      return Failure{std::move(failure)};
    }
  }
  return summary;
}

}  // namespace bai::client
