// One transfer's conversation with a storage proxy: the grant the manager gave for it,
// taken again once when the proxy says it expired, and every request on this thread's
// kept-alive connection. Internal to libbai-client.
#pragma once

#include <bai/client.hpp>
#include <bai/vfolder_transfer.hpp>

#include "http_client.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace bai::client_internal {

class ProxyChannel {
 public:
  ProxyChannel(const client::Client& client, std::string ref, client::TransferOperation operation, std::string path,
               std::chrono::milliseconds timeout);

  // Asks the manager for the grant; every request needs one.
  client::ClientResult<void> open();

  // `target` is the proxy's path and query ("/v1/upload?path=a%2Fb"). Any HTTP status is
  // an answer, except grant-expired, which takes a new grant and sends once more.
  client::ClientResult<http::ClientResponse> send(http::ClientRequest request, const std::string& target);

 private:
  const client::Client& client_;
  std::string ref_;
  client::TransferOperation operation_;
  std::string path_;
  std::chrono::milliseconds timeout_;
  client::TransferGrant grant_;
};

// What an upload or a download keeps while it runs: the channel, the caller's options, the
// progress it reports and the summary it returns.
class TransferRun {
 public:
  TransferRun(ProxyChannel& channel, const client::TransferOptions& options, client::TransferProgress& progress,
              client::TransferSummary& summary)
      : channel_(channel), options_(options), progress_(progress), summary_(summary) {}

 protected:
  // `bytes` more moved by this run.
  void moved(std::uint64_t bytes) {
    summary_.bytes += bytes;
    progress_.bytesDone += bytes;
    report();
  }
  void report() {
    if (options_.progress) options_.progress(progress_);
  }

  ProxyChannel& channel_;
  const client::TransferOptions& options_;
  client::TransferProgress& progress_;
  client::TransferSummary& summary_;
};

// The proxy's error document as an ApiError (type and detail kept).
client::ApiError proxyError(const http::ClientResponse& response);

}  // namespace bai::client_internal
