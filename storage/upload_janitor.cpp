#include "upload_janitor.hpp"

namespace bai::storage {

UploadJanitor::UploadJanitor(VolumeCatalog& catalog, files::TransferApi& transfers, std::chrono::milliseconds period,
                             LogSink log)
    : catalog_(catalog), transfers_(transfers), period_(period), log_(std::move(log)) {
  thread_ = std::thread([this] { run(); });
}

UploadJanitor::~UploadJanitor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::size_t UploadJanitor::sweep() {
  std::size_t removed = 0;
  for (const FolderRef& folder : catalog_.foldersWithStagedUploads()) removed += transfers_.removeExpiredUploads(folder);
  return removed;
}

void UploadJanitor::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, period_, [this] { return stopping_; })) {
    lock.unlock();
    if (const std::size_t removed = sweep(); removed > 0 && log_) {
      log_(LogLevel::Info, "janitor", "removed " + std::to_string(removed) + " abandoned partial upload(s)");
    }
    lock.lock();
  }
}

}  // namespace bai::storage
