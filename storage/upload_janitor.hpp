// Removes abandoned partial uploads: a thread that, every `period`, gives each folder with
// staged uploads to TransferApi::removeExpiredUploads (which refunds their bytes).
#pragma once

#include "files/transfer_api.hpp"
#include "log_sink.hpp"
#include "volume_catalog.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace bai::storage {

class UploadJanitor {
 public:
  UploadJanitor(VolumeCatalog& catalog, files::TransferApi& transfers, std::chrono::milliseconds period, LogSink log);
  ~UploadJanitor();  // stops the thread
  UploadJanitor(const UploadJanitor&) = delete;
  UploadJanitor& operator=(const UploadJanitor&) = delete;

  // One pass now (the thread's work): the number of uploads removed.
  std::size_t sweep();

 private:
  void run();

  VolumeCatalog& catalog_;
  files::TransferApi& transfers_;
  const std::chrono::milliseconds period_;
  const LogSink log_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace bai::storage
