// bai-storage-proxy's client API: listings, downloads and resumable uploads for a client
// holding a grant the manager signed (X-BAI-Grant). The grant names the folder, the
// operation and the path it covers; every path is checked against it, then confined to
// the folder by FolderFs. Nothing here logs: neither the grant nor a query string.
//   GET /v1/list?path=P&recursive=0|1    either grant
//   GET /v1/download?path=P              download grant; Range: one range
//   POST|PATCH|PUT /v1/upload?path=P     upload grant; Upload-Length, Upload-Offset
//   POST /v1/mkdir?path=P                upload grant
// Any thread.
#pragma once

#include "folder_catalog.hpp"
#include "folder_fs.hpp"
#include "http_server.hpp"

#include <bai/storage_protocol.hpp>
#include "upload_store.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>

namespace bai::storage::files {

struct TransferOptions {
  std::size_t maxChunkBytes = 64u << 20;     // the largest PATCH or PUT body
  std::int64_t uploadExpiryMillis = 24 * 3600 * 1000;
  std::function<std::int64_t()> clock = {};  // milliseconds since the epoch; empty: the wall clock
};

class TransferApi {
 public:
  // `grantKey`: storage_protocol::grantKey of the storage token.
  TransferApi(FolderCatalog& catalog, std::string grantKey, TransferOptions options);

  http::Response handle(const http::Request& request);
  // For the server's BodyStreamer: a PATCH or PUT to /v1/upload with a Content-Length goes to
  // disk as it arrives (its grant, path and offset checked before any byte is read); any
  // other request is left to handle().
  std::optional<std::variant<http::Response, http::BodyStream>> stream(const http::Request& head);

  // The janitor's pass over one folder's abandoned uploads (see UploadStore).
  std::size_t removeExpiredUploads(const FolderRef& folder);

 private:
  // What a request addresses once its grant holds: the folder, opened, and the path in it.
  struct Addressed {
    FolderFs fs;
    std::string path;
  };
  // Checks the grant (of the `needed` operation, when given) and the path; the refusal otherwise.
  Result<Addressed, http::Response> address(const http::Request& request,
                                            std::optional<storage_protocol::GrantOperation> needed);
  // 413 for an upload body over max-chunk.
  std::optional<http::Response> tooLarge(std::uint64_t bodyBytes) const;
  // The writer of a PATCH (at its Upload-Offset of its Upload-Length) or a PUT (a whole file)
  // of `bodyBytes`; the refusal otherwise.
  Result<std::unique_ptr<UploadWriter>, http::Response> openUpload(const FolderFs& fs, const std::string& path,
                                                                   const http::Request& request, std::uint64_t bodyBytes);
  http::Response list(const FolderFs& fs, const std::string& path, const http::Request& request);
  http::Response download(const FolderFs& fs, const std::string& path, const http::Request& request);
  http::Response upload(const FolderFs& fs, const std::string& path, const http::Request& request);

  FolderCatalog& catalog_;
  std::string grantKey_;
  TransferOptions options_;
  UploadStore uploads_;
};

}  // namespace bai::storage::files
