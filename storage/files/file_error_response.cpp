#include "file_error_response.hpp"

#include <bai/protocol.hpp>

#include <nlohmann/json.hpp>

namespace bai::storage::files {
namespace {

struct Answer {
  int status;
  const char* type;
  const char* title;
};

Answer answerFor(FileErrorKind kind) {
  switch (kind) {
    case FileErrorKind::InvalidRequest: return {400, "invalid-request", "Invalid request"};
    case FileErrorKind::InvalidPath: return {400, "invalid-path", "Invalid path"};
    case FileErrorKind::PathEscapes: return {403, "path-escapes", "Path leads outside the folder"};
    case FileErrorKind::NotARegularFile: return {400, "not-a-regular-file", "Not a regular file"};
    case FileErrorKind::NoSuchFile: return {404, "no-such-file", "No such file"};
    case FileErrorKind::NoSuchUpload: return {404, "no-such-upload", "No such upload"};
    case FileErrorKind::Exists: return {409, "exists", "Already exists"};
    case FileErrorKind::OffsetMismatch: return {409, "offset-mismatch", "Upload offset mismatch"};
    case FileErrorKind::UploadBusy: return {409, "upload-busy", "Upload being written"};
    case FileErrorKind::TooManyEntries: return {413, "too-many-entries", "Too many entries"};
    case FileErrorKind::QuotaExceeded: return {413, "quota-exceeded", "Quota exceeded"};
    case FileErrorKind::InsufficientStorage: return {507, "insufficient-storage", "Insufficient storage"};
    case FileErrorKind::Internal: break;
  }
  return {500, "internal-error", "Internal error"};
}

}  // namespace

http::Response jsonResponse(int status, std::string body) { return http::Response{status, "application/json", std::move(body), {}}; }

http::Response errorResponse(int status, const std::string& type, const std::string& title, const std::string& detail) {
  return jsonResponse(status, protocol::ApiError{type, title, detail}.toJson());
}

http::Response fileErrorResponse(const FileError& error) {
  const Answer answer = answerFor(error.kind);
  if (error.kind != FileErrorKind::OffsetMismatch || !error.offset) {
    return errorResponse(answer.status, answer.type, answer.title, error.message);
  }
  const nlohmann::json body = {{"type", answer.type}, {"title", answer.title}, {"detail", error.message}, {"offset", *error.offset}};
  http::Response response = jsonResponse(answer.status, body.dump());
  response.headers["Upload-Offset"] = std::to_string(*error.offset);
  return response;
}

}  // namespace bai::storage::files
