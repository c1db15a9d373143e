// The HTTP answers of the file APIs' errors: the one place FileErrorKind meets a status.
#pragma once

#include "file_error.hpp"
#include "http_server.hpp"

#include <string>

namespace bai::storage::files {

// {type, title, detail} (protocol::ApiError) with `status`.
http::Response errorResponse(int status, const std::string& type, const std::string& title, const std::string& detail);
// The status and type of the error's kind; an OffsetMismatch also carries the staged
// offset, in the body ("offset") and in the Upload-Offset header.
http::Response fileErrorResponse(const FileError& error);

http::Response jsonResponse(int status, std::string body);

}  // namespace bai::storage::files
