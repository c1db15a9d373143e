// An exclusive lock on a file beside the database, so that one database has one manager.
// flock(2) rather than SQLite's locking_mode=EXCLUSIVE: it is refused at once with the
// holder's pid instead of "database is locked" after the busy timeout, it never blocks
// an admin's read-only sqlite3 session, and the kernel drops it when the holder dies,
// kill -9 included. A separate file, because flock on NFS is emulated with the same
// fcntl locks SQLite takes on the database itself. Internal to the SQLite store.
#pragma once

#include <bai/result.hpp>

#include <string>

namespace bai::manager {

class FileLock {
 public:
  // Creates `file` (mode 0644) if need be, locks it and writes our pid into it. Conflict,
  // naming `url`, the lock file and the holder's pid, when another process holds it.
  static Result<FileLock> take(const std::string& url, const std::string& file);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&&) = delete;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();  // closing the descriptor releases the lock; the file stays, harmless

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace bai::manager
