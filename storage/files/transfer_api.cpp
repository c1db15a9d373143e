#include "transfer_api.hpp"

#include "file_error_response.hpp"

#include <bai/storage_protocol.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>

namespace bai::storage::files {
namespace {

namespace sp = storage_protocol;

std::int64_t wallClockMillis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// A decimal count of bytes: digits only, no sign, no overflow.
std::optional<std::uint64_t> parseCount(const std::string& text) {
  if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoull(text);
}

Result<std::uint64_t, FileError> countHeader(const http::Request& request, const std::string& name, const std::string& shownName) {
  const auto it = request.headers.find(name);
  if (it == request.headers.end()) return Failure{FileError{FileErrorKind::InvalidRequest, "the " + shownName + " header is missing"}};
  auto count = parseCount(it->second);
  if (!count) return Failure{FileError{FileErrorKind::InvalidRequest, shownName + " must be a count of bytes"}};
  return *count;
}

Result<bool, FileError> recursiveFlag(const http::Request& request) {
  const auto it = request.query.find("recursive");
  if (it == request.query.end() || it->second == "0" || it->second == "false") return false;
  if (it->second == "1" || it->second == "true") return true;
  return Failure{FileError{FileErrorKind::InvalidRequest, "recursive must be 0 or 1"}};
}

struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t length = 0;
};

enum class RangeOutcome { Whole, Partial, Unsatisfiable, Malformed };

// One range of "bytes=A-B", "bytes=A-" or "bytes=-N" against a file of `size` bytes.
RangeOutcome parseRange(const std::string& header, std::uint64_t size, ByteRange& range) {
  if (header.empty()) return RangeOutcome::Whole;
  const std::string prefix = "bytes=";
  if (header.compare(0, prefix.size(), prefix) != 0) return RangeOutcome::Malformed;
  const std::string spec = header.substr(prefix.size());
  const std::size_t dash = spec.find('-');
  if (dash == std::string::npos || spec.find(',') != std::string::npos) return RangeOutcome::Malformed;
  const std::string firstText = spec.substr(0, dash), lastText = spec.substr(dash + 1);
  if (firstText.empty()) {
    auto suffix = parseCount(lastText);
    if (!suffix) return RangeOutcome::Malformed;
    if (*suffix == 0 || size == 0) return RangeOutcome::Unsatisfiable;
    range.length = std::min(*suffix, size);
    range.first = size - range.length;
    return RangeOutcome::Partial;
  }
  auto first = parseCount(firstText);
  if (!first) return RangeOutcome::Malformed;
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!lastText.empty()) {
    auto parsed = parseCount(lastText);
    if (!parsed || *parsed < *first) return RangeOutcome::Malformed;
    last = std::min(last, *parsed);
  }
  if (*first >= size) return RangeOutcome::Unsatisfiable;
  range.first = *first;
  range.length = last - *first + 1;
  return RangeOutcome::Partial;
}

http::Response progressResponse(int status, const UploadProgress& progress) {
  http::Response response = jsonResponse(status, nlohmann::json{{"offset", progress.offset}, {"complete", progress.complete}}.dump());
  response.headers["Upload-Offset"] = std::to_string(progress.offset);
  return response;
}

}  // namespace

TransferApi::TransferApi(FolderCatalog& catalog, std::string grantKey, TransferOptions options)
    : catalog_(catalog),
      grantKey_(std::move(grantKey)),
      options_(std::move(options)),
      uploads_(options_.uploadExpiryMillis, options_.clock ? options_.clock : wallClockMillis) {
  if (!options_.clock) options_.clock = wallClockMillis;
}

std::size_t TransferApi::removeExpiredUploads(const FolderRef& folder) { return uploads_.removeExpired(catalog_, folder); }

http::Response TransferApi::handle(const http::Request& request) {
  const std::string& route = request.path;
  const bool isList = route == "/v1/list", isDownload = route == "/v1/download", isUpload = route == "/v1/upload",
             isMkdir = route == "/v1/mkdir";
  if (!isList && !isDownload && !isUpload && !isMkdir) return errorResponse(404, "not-found", "Not found", "no such endpoint");
  const bool methodFits = isUpload ? (request.method == "POST" || request.method == "PATCH" || request.method == "PUT")
                                   : request.method == (isMkdir ? "POST" : "GET");
  if (!methodFits) return errorResponse(405, "method-not-allowed", "Method not allowed", request.method + " " + route);

  std::optional<sp::GrantOperation> needed;
  if (isDownload) needed = sp::GrantOperation::Download;
  if (isUpload || isMkdir) needed = sp::GrantOperation::Upload;
  auto addressed = address(request, needed);
  if (!addressed) return std::move(addressed.error());
  const FolderFs* fs = &addressed->fs;
  const std::string* path = &addressed->path;
  if (isList) return list(*fs, *path, request);
  if (isDownload) return download(*fs, *path, request);
  if (isUpload) return upload(*fs, *path, request);
  auto made = fs->makeDirectory(*path, true);
  if (!made) return fileErrorResponse(made.error());
  return jsonResponse(201, nlohmann::json{{"path", *path}}.dump());
}

Result<TransferApi::Addressed, http::Response> TransferApi::address(const http::Request& request,
                                                                    std::optional<sp::GrantOperation> needed) {
  const std::string token = request.header("x-bai-grant");
  if (token.empty()) return Failure{errorResponse(401, "grant-missing", "Grant missing", "send the grant in the X-BAI-Grant header")};
  auto grant = sp::verifyGrant(token, grantKey_, options_.clock());
  if (!grant) {
    const bool expired = grant.error().refusal == sp::GrantRefusal::Expired;
    return Failure{errorResponse(403, expired ? "grant-expired" : "grant-invalid", expired ? "Grant expired" : "Grant invalid",
                                 grant.error().message)};
  }
  if (needed && grant->operation != *needed) {
    return Failure{errorResponse(403, "grant-scope", "Outside the grant",
                                 *needed == sp::GrantOperation::Upload ? "uploads need an upload grant"
                                                                       : "downloads need a download grant")};
  }
  const auto pathParameter = request.query.find("path");
  auto path = sp::normalizeFolderPath(pathParameter == request.query.end() ? "" : pathParameter->second);
  if (!path) return Failure{errorResponse(400, "invalid-path", "Invalid path", path.error().message)};
  if (!sp::pathWithin(*path, grant->path)) {
    return Failure{errorResponse(403, "grant-scope", "Outside the grant", "the path is not within the grant's")};
  }
  auto folder = catalog_.folder(grant->volume, grant->folderId);
  if (!folder) return Failure{errorResponse(404, "no-such-folder", "No such folder", "the grant's folder does not exist")};
  auto fs = FolderFs::open(catalog_, *folder);
  if (!fs) return Failure{fileErrorResponse(fs.error())};
  return Addressed{std::move(*fs), std::move(*path)};
}

std::optional<http::Response> TransferApi::tooLarge(std::uint64_t bodyBytes) const {
  if (bodyBytes <= options_.maxChunkBytes) return std::nullopt;
  return errorResponse(413, "body-too-large", "Request body too large",
                       "a chunk is at most " + std::to_string(options_.maxChunkBytes) + " bytes");
}

Result<std::unique_ptr<UploadWriter>, http::Response> TransferApi::openUpload(const FolderFs& fs, const std::string& path,
                                                                              const http::Request& request,
                                                                              std::uint64_t bodyBytes) {
  const bool put = request.method == "PUT";
  std::uint64_t length = bodyBytes, offset = 0;
  if (!put) {
    auto announced = countHeader(request, "upload-length", "Upload-Length");
    if (!announced) return Failure{fileErrorResponse(announced.error())};
    auto at = countHeader(request, "upload-offset", "Upload-Offset");
    if (!at) return Failure{fileErrorResponse(at.error())};
    length = *announced;
    offset = *at;
  }
  auto opened = uploads_.openWriter(fs, path, length, offset, bodyBytes, put);
  if (!opened) return Failure{fileErrorResponse(opened.error())};
  return std::move(*opened);
}

std::optional<std::variant<http::Response, http::BodyStream>> TransferApi::stream(const http::Request& head) {
  const bool put = head.method == "PUT";
  if (head.path != "/v1/upload" || (!put && head.method != "PATCH")) return std::nullopt;
  auto bodyBytes = countHeader(head, "content-length", "Content-Length");
  if (!bodyBytes) return std::nullopt;  // the buffered path answers it
  if (auto refused = tooLarge(*bodyBytes)) return std::move(*refused);
  auto addressed = address(head, sp::GrantOperation::Upload);
  if (!addressed) return std::move(addressed.error());
  auto target = std::make_shared<Addressed>(std::move(*addressed));
  auto opened = openUpload(target->fs, target->path, head, *bodyBytes);
  if (!opened) return std::move(opened.error());
  std::shared_ptr<UploadWriter> writer(std::move(*opened));
  const int status = put ? 201 : 200;
  // The writer keeps a reference to the folder it writes into: both live as long as the stream.
  return http::BodyStream{[target, writer](std::string_view piece) -> std::optional<http::Response> {
                            if (auto written = writer->write(piece); !written) return fileErrorResponse(written.error());
                            return std::nullopt;
                          },
                          [target, writer, status]() {
                            auto done = writer->finish();
                            return done ? progressResponse(status, *done) : fileErrorResponse(done.error());
                          }};
}

http::Response TransferApi::list(const FolderFs& fs, const std::string& path, const http::Request& request) {
  auto recursive = recursiveFlag(request);
  if (!recursive) return fileErrorResponse(recursive.error());
  auto entries = fs.list(path, *recursive);
  if (!entries) return fileErrorResponse(entries.error());
  return jsonResponse(200, sp::entriesToJson(*entries));
}

http::Response TransferApi::download(const FolderFs& fs, const std::string& path, const http::Request& request) {
  if (path.empty()) return fileErrorResponse({FileErrorKind::NotARegularFile, "the folder's root is a directory, not a regular file"});
  auto file = fs.openForReading(path);
  if (!file) return fileErrorResponse(file.error());
  ByteRange range{0, file->size};
  const RangeOutcome outcome = parseRange(request.header("range"), file->size, range);
  if (outcome == RangeOutcome::Malformed) {
    return errorResponse(400, "invalid-request", "Invalid request", "Range must be one of bytes=A-B, bytes=A- or bytes=-N");
  }
  if (outcome == RangeOutcome::Unsatisfiable) {
    http::Response response = errorResponse(416, "range-not-satisfiable", "Range not satisfiable",
                                            "the file is " + std::to_string(file->size) + " bytes long");
    response.headers["Content-Range"] = "bytes */" + std::to_string(file->size);
    return response;
  }
  http::Response response;
  response.status = outcome == RangeOutcome::Partial ? 206 : 200;
  response.contentType = "application/octet-stream";
  response.headers["Accept-Ranges"] = "bytes";
  if (outcome == RangeOutcome::Partial) {
    response.headers["Content-Range"] = "bytes " + std::to_string(range.first) + "-" +
                                        std::to_string(range.first + range.length - 1) + "/" + std::to_string(file->size);
  }
  response.file = std::make_shared<http::FileBody>(file->fd.release(), range.first, range.length);
  return response;
}

http::Response TransferApi::upload(const FolderFs& fs, const std::string& path, const http::Request& request) {
  if (request.method == "POST") {
    auto length = countHeader(request, "upload-length", "Upload-Length");
    if (!length) return fileErrorResponse(length.error());
    auto started = uploads_.start(fs, path, *length);
    if (!started) return fileErrorResponse(started.error());
    return progressResponse(200, *started);
  }
  // A PATCH or PUT whose body came whole (sent without a Content-Length): one piece through
  // the writer that streamed bodies use.
  if (auto refused = tooLarge(request.body.size())) return std::move(*refused);
  auto writer = openUpload(fs, path, request, request.body.size());
  if (!writer) return std::move(writer.error());
  if (auto written = (*writer)->write(request.body); !written) return fileErrorResponse(written.error());
  auto done = (*writer)->finish();
  return done ? progressResponse(request.method == "PUT" ? 201 : 200, *done) : fileErrorResponse(done.error());
}

}  // namespace bai::storage::files
