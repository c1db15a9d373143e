// Moving files between this machine and a virtual folder: the client asks the manager for
// a grant (one per call, and again when the proxy says it expired), then talks to the
// storage proxy directly on one kept-alive connection. Uploads of files up to
// singleRequestBytes go in one PUT; larger ones in chunks from the offset the proxy
// reports, so running the same upload again resumes it. Downloads write <dest>.bai-part,
// resume it with a Range request and rename it into place when complete.
#pragma once

#include <bai/client.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace bai::client {

struct TransferProgress {
  std::uint64_t bytesDone = 0;
  std::uint64_t bytesTotal = 0;
  std::size_t filesDone = 0;
  std::size_t filesTotal = 0;
};

struct TransferOptions {
  bool recursive = false;  // directories (a local tree, a remote directory)
  // Called after each piece moved; on the calling thread.
  std::function<void(const TransferProgress&)> progress = {};
  std::uint64_t singleRequestBytes = 8u << 20;  // larger files are uploaded in chunks
  std::uint64_t chunkBytes = 32u << 20;
  std::chrono::milliseconds requestTimeout{600000};  // one request to the proxy
};

struct TransferSummary {
  std::uint64_t bytes = 0;  // moved by this run (not those a resumed transfer had already)
  std::size_t files = 0;
  std::size_t directories = 0;  // made on the far side (empty ones included)
  std::vector<std::string> skipped;  // local symlinks and special files: "PATH (why)"
};

// Uploads `local` (a file, or with recursive a directory tree) to `remoteDir` of folder
// `ref`: a file lands at remoteDir/<its name>, a tree below remoteDir/<its name>.
ClientResult<TransferSummary> uploadToVfolder(const Client& client, const std::string& ref,
                                              const std::filesystem::path& local, const std::string& remoteDir,
                                              const TransferOptions& options = {});

// Downloads `remote` (a file, or with recursive a directory) of folder `ref` into
// `localDir`: to localDir/<its name> (the folder's root: into localDir itself).
ClientResult<TransferSummary> downloadFromVfolder(const Client& client, const std::string& ref,
                                                  const std::string& remote, const std::filesystem::path& localDir,
                                                  const TransferOptions& options = {});

}  // namespace bai::client
