// Resumable uploads into folders. Each upload of (folder, path, length) stages its bytes
// in one file in the folder's stagingDir, named by a hash of the three, written in order
// only: the staged file's size is the upload's offset, so a proxy killed at any moment
// resumes where the disk says. On completion the file is fsynced, given to the owner and
// renamed into place: never a partial file at the path.
//
// Quota: a new upload is charged its length less the size of the file it replaces; one
// found on disk after a restart is charged what the catalog's disk scan (which counts the
// staged bytes) did not already count. Abandoned uploads are removed and refunded after
// `expiry`. Any thread: one mutex guards the table; at most one request appends to an
// upload at a time (another is UploadBusy).
#pragma once

#include "file_error.hpp"
#include "folder_fs.hpp"

#include <bai/result.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace bai::storage::files {

struct UploadProgress {
  std::uint64_t offset = 0;
  bool complete = false;
};

class UploadStore;

// One request's bytes going into an upload in order, piece by piece (a streamed PATCH or
// PUT). Holds the upload while it lives: another request for it is UploadBusy.
class UploadWriter {
 public:
  ~UploadWriter();
  UploadWriter(const UploadWriter&) = delete;
  UploadWriter& operator=(const UploadWriter&) = delete;

  // The next bytes; more than the request announced is InvalidRequest.
  Result<void, FileError> write(std::string_view piece);
  // After the request's last piece: the offset reached, and the file completed (synced,
  // the owner's, renamed into place) when that is the upload's end.
  Result<UploadProgress, FileError> finish();

 private:
  friend class UploadStore;
  struct Target;
  UploadWriter(UploadStore& store, std::unique_ptr<Target> target);

  UploadStore& store_;
  std::unique_ptr<Target> target_;
};

class UploadStore {
 public:
  // `clockMillis`: the wall clock (milliseconds since the epoch), compared with the
  // staging files' modification times.
  UploadStore(std::int64_t expiryMillis, std::function<std::int64_t()> clockMillis);

  // Starts the upload of `length` bytes to `path`, or finds the one in progress: its offset.
  Result<UploadProgress, FileError> start(const FolderFs& fs, const std::string& path, std::uint64_t length);
  // The writer for `bodyBytes` coming at `offset` of the upload of `length` bytes (which
  // must be the staged size), or for a whole file of `length` bytes (`restart`). It keeps
  // `fs`, which must outlive it.
  Result<std::unique_ptr<UploadWriter>, FileError> openWriter(const FolderFs& fs, const std::string& path,
                                                              std::uint64_t length, std::uint64_t offset,
                                                              std::uint64_t bodyBytes, bool restart);

  // Removes and refunds the folder's staged uploads untouched for longer than the expiry;
  // how many. Run for each folder now and then (start() does it for its folder).
  std::size_t removeExpired(FolderCatalog& catalog, const FolderRef& folder);

 private:
  struct Upload {
    std::int64_t applied = 0;  // bytes this upload counts in the folder's usage so far
    bool busy = false;
  };
  struct Staging {
    std::string name;  // in the folder's stagingDir
    std::string key;   // the table's: the staging file's host path
  };

  Staging stagingFor(const FolderRef& folder, const std::string& path, std::uint64_t length) const;
  // With mutex_ held.
  Result<UploadProgress, FileError> startLocked(const FolderFs& fs, const std::string& path, std::uint64_t length);
  friend class UploadWriter;
  void release(const std::string& key);
  Result<void, FileError> complete(const FolderFs& fs, const std::string& path, const Staging& staging, int stagingFd,
                                   std::uint64_t length);
  void abandon(const FolderFs& fs, const Staging& staging);

  std::int64_t expiryMillis_;
  std::function<std::int64_t()> clockMillis_;
  std::mutex mutex_;
  std::map<std::string, Upload> uploads_;  // by Staging::key
};

}  // namespace bai::storage::files
