// uploadToVfolder: local files and trees to a folder through its storage proxy.
#include <bai/vfolder_transfer.hpp>

#include "proxy_channel.hpp"
#include "transfer_paths.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace bai::client {
namespace {

namespace fs = std::filesystem;
using client_internal::ProxyChannel;
using client_internal::TransferRun;
using client_internal::proxyError;
using client_internal::remoteTarget;
using client_internal::transferFailure;

struct LocalFile {
  fs::path local;
  std::string remote;
  std::uint64_t size = 0;
};

// What one upload moves: its files, the directories that would otherwise not exist on
// the far side (empty ones), and what it leaves out.
struct UploadPlan {
  std::vector<LocalFile> files;
  std::vector<std::string> emptyDirectories;
  std::vector<std::string> skipped;
  std::uint64_t bytes = 0;
};

ClientResult<UploadPlan> planUpload(const fs::path& local, const std::string& remoteBase, bool recursive) {
  UploadPlan plan;
  std::error_code error;
  const fs::file_status top = fs::symlink_status(local, error);
  if (error || !fs::exists(top)) return transferFailure("no-such-file", local.string() + ": no such file or directory");
  if (fs::is_symlink(top)) {
    plan.skipped.push_back(local.string() + " (a symbolic link: not followed)");
    return plan;
  }
  if (fs::is_regular_file(top)) {
    const std::uint64_t size = fs::file_size(local, error);
    if (error) return transferFailure("unreadable", local.string() + ": " + error.message());
    plan.files.push_back({local, remoteBase, size});
    plan.bytes = size;
    return plan;
  }
  if (!fs::is_directory(top)) {
    plan.skipped.push_back(local.string() + " (not a regular file or directory)");
    return plan;
  }
  if (!recursive) return transferFailure("is-a-directory", local.string() + " is a directory (use -r to upload it)");
  fs::recursive_directory_iterator walk(local, fs::directory_options::none, error);
  if (error) return transferFailure("unreadable", local.string() + ": " + error.message());
  std::vector<std::string> directories = {remoteBase};
  std::vector<std::string> parentsOfContent;
  for (; walk != fs::recursive_directory_iterator(); walk.increment(error)) {
    if (error) return transferFailure("unreadable", local.string() + ": " + error.message());
    const fs::path& path = walk->path();
    const std::string remote = client_internal::joinRemote(remoteBase, path.lexically_relative(local).generic_string());
    const fs::file_status status = walk->symlink_status(error);
    if (fs::is_symlink(status)) {
      plan.skipped.push_back(path.string() + " (a symbolic link: not followed)");
    } else if (fs::is_directory(status)) {
      directories.push_back(remote);
    } else if (fs::is_regular_file(status)) {
      const std::uint64_t size = walk->file_size(error);
      if (error) return transferFailure("unreadable", path.string() + ": " + error.message());
      plan.files.push_back({path, remote, size});
      plan.bytes += size;
    } else {
      plan.skipped.push_back(path.string() + " (not a regular file or directory)");
      continue;
    }
    if (!fs::is_symlink(status)) parentsOfContent.push_back(remote.substr(0, remote.rfind('/')));
  }
  // A directory holding anything is made by the uploads below it; the rest need mkdir.
  std::sort(parentsOfContent.begin(), parentsOfContent.end());
  for (const std::string& directory : directories) {
    if (!std::binary_search(parentsOfContent.begin(), parentsOfContent.end(), directory)) {
      plan.emptyDirectories.push_back(directory);
    }
  }
  return plan;
}

class Uploader : private TransferRun {
 public:
  using TransferRun::TransferRun;

  ClientResult<void> mkdir(const std::string& remote) {
    http::ClientRequest request;
    request.method = "POST";
    auto response = channel_.send(request, remoteTarget("/v1/mkdir", remote));
    if (!response) return Failure{response.error()};
    if (response->status / 100 != 2) return Failure{proxyError(*response)};
    ++summary_.directories;
    return {};
  }

  ClientResult<void> upload(const LocalFile& file) {
    const int fd = ::open(file.local.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return transferFailure("unreadable", file.local.string() + ": " + std::strerror(errno));
    auto done = file.size <= options_.singleRequestBytes ? whole(fd, file) : inChunks(fd, file);
    ::close(fd);
    if (!done) return done;
    ++summary_.files;
    ++progress_.filesDone;
    report();
    return {};
  }

 private:
  ClientResult<void> whole(int fd, const LocalFile& file) {
    http::ClientRequest request;
    request.method = "PUT";
    request.headers["Content-Type"] = "application/octet-stream";
    if (auto read = readAt(fd, file, 0, file.size, request.body); !read) return read;
    auto response = channel_.send(std::move(request), remoteTarget("/v1/upload", file.remote));
    if (!response) return Failure{response.error()};
    if (response->status / 100 != 2) return Failure{proxyError(*response)};
    moved(file.size);
    return {};
  }

  // POST learns where the proxy stands (0, or what an interrupted run left staged);
  // PATCH sends the rest from there.
  ClientResult<void> inChunks(int fd, const LocalFile& file) {
    const std::string target = remoteTarget("/v1/upload", file.remote);
    http::ClientRequest start;
    start.method = "POST";
    start.headers["Upload-Length"] = std::to_string(file.size);
    auto response = channel_.send(start, target);
    if (!response) return Failure{response.error()};
    if (response->status / 100 != 2) return Failure{proxyError(*response)};
    auto state = uploadState(*response);
    if (!state) return Failure{state.error()};
    if (state->first > file.size) {
      return transferFailure("invalid-reply", "the proxy has " + std::to_string(state->first) + " bytes staged of a " +
                                                  std::to_string(file.size) + "-byte file");
    }
    progress_.bytesDone += state->first;  // already there: counted as done, not as moved
    for (int mismatches = 0, busyWaits = 0; !state->second;) {
      const std::uint64_t offset = state->first;
      http::ClientRequest chunk;
      chunk.method = "PATCH";
      chunk.headers = {{"Upload-Length", std::to_string(file.size)}, {"Upload-Offset", std::to_string(offset)},
                       {"Content-Type", "application/offset+octet-stream"}};
      const std::uint64_t length = std::min(options_.chunkBytes, file.size - offset);
      // Read from the file as curl sends: the chunk never sits in memory whole.
      bool shortRead = false;
      chunk.bodySourceBytes = length;
      chunk.bodySource = [fd, offset, length, &shortRead](char* buffer, std::size_t size, std::uint64_t at) -> std::size_t {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(size, length - at));
        ssize_t n;
        do {
          n = ::pread(fd, buffer, want, static_cast<off_t>(offset + at));
        } while (n < 0 && errno == EINTR);
        if (n > 0 || want == 0) return n > 0 ? static_cast<std::size_t>(n) : 0;
        shortRead = true;
        return 0;  // fails the exchange
      };
      response = channel_.send(std::move(chunk), target);
      if (shortRead) return transferFailure("file-changed", file.local.string() + " became shorter while it was uploaded");
      // The request of a client that died a moment ago may still hold the upload on the
      // proxy until its connection is seen closed: wait for it, up to five seconds.
      if (response && response->status == 409 && proxyError(*response).type == "upload-busy" && ++busyWaits <= 25) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      if (!response) return Failure{response.error()};
      const bool mismatch = response->status == 409 && proxyError(*response).type == "offset-mismatch";
      if (response->status / 100 != 2 && !(mismatch && ++mismatches <= 3)) return Failure{proxyError(*response)};
      state = mismatch ? offsetHeader(*response) : uploadState(*response);
      if (!state) return Failure{state.error()};
      // A proxy that neither takes the chunk nor ends the upload would be asked forever.
      if (state->first > file.size || (!mismatch && !state->second && state->first <= offset)) {
        return transferFailure("invalid-reply", "the proxy answered offset " + std::to_string(state->first) +
                                                    " after a chunk at " + std::to_string(offset) + " of " +
                                                    std::to_string(file.size) + " bytes");
      }
      if (state->first < offset) {
        progress_.bytesDone -= std::min(progress_.bytesDone, offset - state->first);
      } else {
        moved(state->first - offset);
      }
    }
    return {};
  }

  // {"offset":K,"complete":bool}
  static ClientResult<std::pair<std::uint64_t, bool>> uploadState(const http::ClientResponse& response) {
    try {
      const auto doc = nlohmann::json::parse(response.body);
      return std::make_pair(doc.at("offset").get<std::uint64_t>(), doc.value("complete", false));
    } catch (const std::exception& e) {
      return transferFailure("invalid-reply", std::string("the proxy's upload state: ") + e.what());
    }
  }

  static ClientResult<std::pair<std::uint64_t, bool>> offsetHeader(const http::ClientResponse& response) {
    const auto it = response.headers.find("upload-offset");
    if (it == response.headers.end() || it->second.empty() || it->second.size() > 19 ||
        it->second.find_first_not_of("0123456789") != std::string::npos) {
      return transferFailure("invalid-reply", "offset-mismatch without a valid Upload-Offset header");
    }
    return std::make_pair(static_cast<std::uint64_t>(std::stoull(it->second)), false);
  }

  ClientResult<void> readAt(int fd, const LocalFile& file, std::uint64_t offset, std::uint64_t length, std::string& out) {
    out.resize(length);
    std::size_t got = 0;
    while (got < length) {
      const ssize_t n = ::pread(fd, out.data() + got, length - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return transferFailure("unreadable", file.local.string() + ": " + std::strerror(errno));
      if (n == 0) return transferFailure("file-changed", file.local.string() + " became shorter while it was uploaded");
      got += static_cast<std::size_t>(n);
    }
    return {};
  }

};

}  // namespace

ClientResult<TransferSummary> uploadToVfolder(const Client& client, const std::string& ref, const fs::path& local,
                                              const std::string& remoteDir, const TransferOptions& options) {
  const std::string name = client_internal::localName(local);
  if (name.empty()) return client_internal::transferFailure("invalid-path", local.string() + " names no file");
  const std::string remoteBase = client_internal::joinRemote(client_internal::trimRemote(remoteDir), name);
  auto plan = planUpload(local, remoteBase, options.recursive);
  if (!plan) return Failure{plan.error()};
  TransferSummary summary;
  summary.skipped = plan->skipped;
  if (plan->files.empty() && plan->emptyDirectories.empty()) return summary;
  ProxyChannel channel(client, ref, TransferOperation::Upload, remoteBase, options.requestTimeout);
  if (auto opened = channel.open(); !opened) return Failure{opened.error()};
  TransferProgress progress{0, plan->bytes, 0, plan->files.size()};
  Uploader uploader(channel, options, progress, summary);
  for (const std::string& directory : plan->emptyDirectories) {
    if (auto made = uploader.mkdir(directory); !made) return Failure{made.error()};
  }
  for (const LocalFile& file : plan->files) {
    if (auto sent = uploader.upload(file); !sent) {
      ApiError error = sent.error();
      error.detail = file.local.string() + ": " + error.detail;
      return Failure{std::move(error)};
    }
  }
  return summary;
}

}  // namespace bai::client
