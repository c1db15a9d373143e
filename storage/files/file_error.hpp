// What can go wrong with a file operation inside a folder, as a kind the API layer turns
// into a status (file_error_response.hpp). Messages name folder-relative paths only, never
// the host path of the volume.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace bai::storage::files {

enum class FileErrorKind {
  InvalidRequest,       // a malformed body or header
  InvalidPath,          // refused by normalizeFolderPath
  PathEscapes,          // a symlink leads outside the folder
  NotARegularFile,      // a directory, device, FIFO or socket where a file was needed
  NoSuchFile,
  NoSuchUpload,
  Exists,               // the target exists (or is a directory an upload cannot replace)
  OffsetMismatch,       // an upload's chunk not at the staged size (offset says where)
  UploadBusy,           // another request is appending to the same upload
  TooManyEntries,
  QuotaExceeded,
  InsufficientStorage,  // ENOSPC, EDQUOT
  Internal,
};

struct FileError {
  FileErrorKind kind = FileErrorKind::Internal;
  std::string message;
  std::optional<std::uint64_t> offset = {};  // OffsetMismatch: the bytes staged so far
};

// A FileError for a failed system call on `path` (folder-relative; "" is the folder's root).
FileError errnoError(int error, const std::string& what, const std::string& path);

}  // namespace bai::storage::files
