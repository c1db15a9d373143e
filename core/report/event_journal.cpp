#include "report/event_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace bai::core {
namespace {

namespace fs = std::filesystem;

// Rewrite the journal once this many acknowledged lines sit in front of the unacked ones.
constexpr std::size_t kCompactAfterAckedLines = 1024;

Failure<Error> systemFailure(const std::string& what, const fs::path& path) {
  return fail(ErrorCode::Internal, what + " " + path.string() + ": " + std::strerror(errno));
}

class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~FileDescriptor() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Result<FileDescriptor> openFile(const fs::path& path, int flags) {
  FileDescriptor fd(::open(path.c_str(), flags | O_CLOEXEC, 0600));
  if (!fd.valid()) return systemFailure("cannot open", path);
  return fd;
}

Result<void> writeAll(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    const ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return systemFailure("cannot write", path);
    data.remove_prefix(static_cast<std::size_t>(written));
  }
  return {};
}

Result<std::string> readAll(int fd, const fs::path& path) {
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t got = ::pread(fd, buffer, sizeof buffer, static_cast<off_t>(text.size()));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return systemFailure("cannot read", path);
    if (got == 0) return text;
    text.append(buffer, static_cast<std::size_t>(got));
  }
}

// A rename is durable only once the directory holding it is synced.
Result<void> syncDirectory(const fs::path& dir) {
  auto fd = openFile(dir, O_RDONLY | O_DIRECTORY);
  if (!fd) return Failure{fd.error()};
  if (::fsync(fd->get()) != 0) return systemFailure("cannot sync directory", dir);
  return {};
}

Result<void> truncateDurably(int fd, std::uint64_t size, const fs::path& path) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return systemFailure("cannot truncate", path);
  if (::fdatasync(fd) != 0) return systemFailure("cannot sync", path);
  return {};
}

// Either the old or the new content survives a crash, never a mix.
Result<void> replaceFileAtomically(const fs::path& path, std::string_view content) {
  fs::path temporary = path;
  temporary += ".tmp";
  auto fd = openFile(temporary, O_WRONLY | O_CREAT | O_TRUNC);
  if (!fd) return Failure{fd.error()};
  if (auto written = writeAll(fd->get(), content, temporary); !written) return written;
  if (::fsync(fd->get()) != 0) return systemFailure("cannot sync", temporary);
  fd->reset();
  if (::rename(temporary.c_str(), path.c_str()) != 0) return systemFailure("cannot rename onto", path);
  return syncDirectory(path.parent_path());
}

// One event per line, in the protocol's own event shape (a batch of one).
std::string eventLine(const protocol::SessionEvent& event) {
  return protocol::EventBatch{"", {event}}.toJson() + "\n";
}

Result<protocol::SessionEvent> parseEventLine(std::string_view line) {
  auto batch = protocol::EventBatch::fromJson(line);
  if (!batch) return Failure{batch.error()};
  if (batch->events.size() != 1) return fail(ErrorCode::InvalidArgument, "expected exactly one event");
  return std::move(batch->events.front());
}

Result<std::uint64_t> readAckedThrough(const fs::path& path) {
  std::error_code missing;
  if (!fs::exists(path, missing)) return std::uint64_t{0};
  auto fd = openFile(path, O_RDONLY);
  if (!fd) return Failure{fd.error()};
  auto text = readAll(fd->get(), path);
  if (!text) return Failure{text.error()};
  auto ack = protocol::EventAck::fromJson(*text);
  if (!ack) return fail(ErrorCode::InvalidArgument, path.string() + ": " + ack.error().message);
  return ack->ackedThrough;
}

struct LoadedJournal {
  std::deque<protocol::SessionEvent> events;
  std::size_t validBytes = 0;  // everything after this is a torn write
  std::size_t lines = 0;
};

// The last line may be torn by a crash during append: it is dropped. A bad line with
// good ones after it is corruption, which is refused rather than guessed around.
Result<LoadedJournal> parseJournal(std::string_view text, const fs::path& path) {
  LoadedJournal loaded;
  std::uint64_t previousSeq = 0;
  while (loaded.validBytes < text.size()) {
    const std::size_t end = text.find('\n', loaded.validBytes);
    if (end == std::string_view::npos) break;
    auto event = parseEventLine(text.substr(loaded.validBytes, end - loaded.validBytes));
    const bool lastLine = end + 1 == text.size();
    if (!event && lastLine) break;
    const std::string where = path.string() + " line " + std::to_string(loaded.lines + 1);
    if (!event) return fail(ErrorCode::InvalidArgument, where + " is corrupt: " + event.error().message);
    if (event->seq <= previousSeq) return fail(ErrorCode::InvalidArgument, where + ": sequence numbers go backwards");
    previousSeq = event->seq;
    loaded.events.push_back(std::move(*event));
    loaded.validBytes = end + 1;
    ++loaded.lines;
  }
  return loaded;
}

}  // namespace

struct EventJournal::State {
  fs::path dir;
  fs::path journalPath;
  fs::path ackPath;
  FileDescriptor journal;  // opened with O_APPEND
  std::deque<protocol::SessionEvent> pending;
  std::uint64_t lastSeq = 0;
  std::uint64_t ackedThrough = 0;
  std::size_t linesInFile = 0;  // acknowledged ones included, until compaction
  std::uint64_t bytesInFile = 0;
  mutable std::mutex mutex;     // guards everything above
  std::mutex acknowledgeMutex;  // one acknowledgement at a time, its disk writes outside `mutex`

  Result<void> compact();
  Result<void> rewriteWithPendingOnly();
};

EventJournal::EventJournal(std::unique_ptr<State> state) : state_(std::move(state)) {}
EventJournal::EventJournal(EventJournal&&) noexcept = default;
EventJournal& EventJournal::operator=(EventJournal&&) noexcept = default;
EventJournal::~EventJournal() = default;

Result<EventJournal> EventJournal::open(fs::path dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(ErrorCode::Internal, "cannot create " + dir.string() + ": " + ec.message());

  auto state = std::make_unique<State>();
  state->dir = dir;
  state->journalPath = dir / kJournalFile;
  state->ackPath = dir / kAckFile;
  const bool journalIsNew = !fs::exists(state->journalPath, ec);

  auto journal = openFile(state->journalPath, O_RDWR | O_CREAT | O_APPEND);
  if (!journal) return Failure{journal.error()};
  state->journal = std::move(*journal);
  if (journalIsNew) {
    if (auto synced = syncDirectory(dir); !synced) return Failure{synced.error()};
  }

  auto ackedThrough = readAckedThrough(state->ackPath);
  if (!ackedThrough) return Failure{ackedThrough.error()};
  auto text = readAll(state->journal.get(), state->journalPath);
  if (!text) return Failure{text.error()};
  auto loaded = parseJournal(*text, state->journalPath);
  if (!loaded) return Failure{loaded.error()};
  if (loaded->validBytes < text->size()) {
    auto cut = truncateDurably(state->journal.get(), loaded->validBytes, state->journalPath);
    if (!cut) return Failure{cut.error()};
  }

  state->ackedThrough = *ackedThrough;
  state->lastSeq = std::max(*ackedThrough, loaded->events.empty() ? 0 : loaded->events.back().seq);
  state->linesInFile = loaded->lines;
  state->bytesInFile = loaded->validBytes;
  for (auto& event : loaded->events) {
    if (event.seq > state->ackedThrough) state->pending.push_back(std::move(event));
  }
  if (auto compacted = state->compact(); !compacted) return Failure{compacted.error()};
  return EventJournal(std::move(state));
}

Result<protocol::SessionEvent> EventJournal::append(protocol::SessionEvent event) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  event.seq = state_->lastSeq + 1;
  const std::string line = eventLine(event);
  const int fd = state_->journal.get();
  auto written = writeAll(fd, line, state_->journalPath);
  if (written && ::fdatasync(fd) != 0) written = systemFailure("cannot sync", state_->journalPath);
  if (!written) {
    // Best effort: a half-written line would otherwise glue onto the next append.
    (void)::ftruncate(fd, static_cast<off_t>(state_->bytesInFile));
    return Failure{written.error()};
  }
  state_->lastSeq = event.seq;
  state_->bytesInFile += line.size();
  ++state_->linesInFile;
  state_->pending.push_back(event);
  return event;
}

std::vector<protocol::SessionEvent> EventJournal::unacked(std::size_t max) const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  const std::size_t count = std::min(max, state_->pending.size());
  return {state_->pending.begin(), state_->pending.begin() + static_cast<std::ptrdiff_t>(count)};
}

// The ack file is synced without holding `mutex`, so appends do not wait for it.
Result<void> EventJournal::acknowledge(std::uint64_t through) {
  std::lock_guard<std::mutex> acknowledging(state_->acknowledgeMutex);
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (through <= state_->ackedThrough) return {};
    if (through > state_->lastSeq) {
      return fail(ErrorCode::OutOfRange, "acknowledgement through seq " + std::to_string(through) +
                                             " but the last event written is seq " + std::to_string(state_->lastSeq));
    }
  }
  auto persisted = replaceFileAtomically(state_->ackPath, protocol::EventAck{through}.toJson());
  if (!persisted) return persisted;

  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->ackedThrough = through;
  while (!state_->pending.empty() && state_->pending.front().seq <= through) state_->pending.pop_front();

  auto compacted = state_->compact();
  if (!compacted) {
    return fail(compacted.error().code, "events through seq " + std::to_string(through) +
                                            " acknowledged, but compacting the journal failed: " +
                                            compacted.error().message);
  }
  return {};
}

std::uint64_t EventJournal::lastSeq() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->lastSeq;
}

std::uint64_t EventJournal::ackedThrough() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->ackedThrough;
}

std::size_t EventJournal::unackedCount() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->pending.size();
}

// The ack file is durable before this runs, so a crash midway leaves only lines that
// reopening recognises as acknowledged; the last seq survives an empty journal there
// too. That is also why emptying the journal needs no sync of its own.
Result<void> EventJournal::State::compact() {
  const std::size_t ackedLines = linesInFile - pending.size();
  if (ackedLines == 0) return {};
  if (pending.empty()) {
    if (::ftruncate(journal.get(), 0) != 0) return systemFailure("cannot truncate", journalPath);
    linesInFile = 0;
    bytesInFile = 0;
    return {};
  }
  // The manager may always lag a little behind: rewrite rather than grow forever.
  if (ackedLines >= kCompactAfterAckedLines && ackedLines > pending.size()) return rewriteWithPendingOnly();
  return {};
}

// The new file is written through its own descriptor, which becomes the journal's, so
// appends never go to a file that a rename has already replaced.
Result<void> EventJournal::State::rewriteWithPendingOnly() {
  std::string content;
  for (const auto& event : pending) content += eventLine(event);
  fs::path temporary = journalPath;
  temporary += ".tmp";
  auto fresh = openFile(temporary, O_RDWR | O_CREAT | O_TRUNC | O_APPEND);
  if (!fresh) return Failure{fresh.error()};
  if (auto written = writeAll(fresh->get(), content, temporary); !written) return written;
  if (::fsync(fresh->get()) != 0) return systemFailure("cannot sync", temporary);
  if (::rename(temporary.c_str(), journalPath.c_str()) != 0) return systemFailure("cannot rename onto", journalPath);
  journal = std::move(*fresh);
  linesInFile = pending.size();
  bytesInFile = content.size();
  return syncDirectory(dir);
}

}  // namespace bai::core
