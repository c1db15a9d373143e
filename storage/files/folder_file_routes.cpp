#include "folder_file_routes.hpp"

#include "file_error_response.hpp"
#include "folder_fs.hpp"
#include "parse_json.hpp"

#include <bai/storage_protocol.hpp>

namespace bai::storage::files {
namespace {

namespace sp = storage_protocol;

// A JSON body's fields, each checked for its type; the first problem is kept.
class BodyFields {
 public:
  explicit BodyFields(const std::string& body) {
    auto parsed = parseJson(body);
    if (!parsed) {
      problem_ = "the body is not JSON: " + parsed.error().message;
    } else if (!parsed->is_object()) {
      problem_ = "the body must be a JSON object";
    } else {
      document_ = std::move(*parsed);
    }
  }

  // A normalised folder path (required).
  std::string path(const char* name) {
    if (!problem_.empty()) return {};
    const auto it = document_.find(name);
    if (it == document_.end() || !it->is_string()) {
      problem_ = std::string("'") + name + "' must be a string";
      return {};
    }
    auto normalised = sp::normalizeFolderPath(it->get<std::string>());
    if (!normalised) {
      pathProblem_ = true;
      problem_ = normalised.error().message;
      return {};
    }
    return *normalised;
  }

  bool flag(const char* name) {
    const auto it = document_.find(name);
    if (it == document_.end() || it->is_null()) return false;
    if (!it->is_boolean()) {
      if (problem_.empty()) problem_ = std::string("'") + name + "' must be true or false";
      return false;
    }
    return it->get<bool>();
  }

  std::optional<http::Response> refusal() const {
    if (problem_.empty()) return std::nullopt;
    return pathProblem_ ? errorResponse(400, "invalid-path", "Invalid path", problem_)
                        : errorResponse(400, "invalid-request", "Invalid request", problem_);
  }

 private:
  nlohmann::json document_ = nlohmann::json::object();
  std::string problem_;
  bool pathProblem_ = false;
};

http::Response noContent() { return http::Response{204, "application/json", "", {}}; }

}  // namespace

http::Response FolderFileRoutes::handle(const http::Request& request, const FolderRef& folder, std::string_view action) {
  const bool isList = action == "files";
  if (!isList && action != "mkdir" && action != "delete" && action != "move") {
    return errorResponse(404, "not-found", "Not found", "no such folder operation");
  }
  if (request.method != (isList ? "GET" : "POST")) {
    return errorResponse(405, "method-not-allowed", "Method not allowed", request.method + " " + std::string(action));
  }
  auto fs = FolderFs::open(catalog_, folder);
  if (!fs) return fileErrorResponse(fs.error());

  if (isList) {
    const auto pathParameter = request.query.find("path");
    auto path = sp::normalizeFolderPath(pathParameter == request.query.end() ? "" : pathParameter->second);
    if (!path) return errorResponse(400, "invalid-path", "Invalid path", path.error().message);
    const auto recursiveParameter = request.query.find("recursive");
    const std::string recursive = recursiveParameter == request.query.end() ? "0" : recursiveParameter->second;
    if (recursive != "0" && recursive != "1") return errorResponse(400, "invalid-request", "Invalid request", "recursive must be 0 or 1");
    auto entries = fs->list(*path, recursive == "1");
    if (!entries) return fileErrorResponse(entries.error());
    return jsonResponse(200, sp::entriesToJson(*entries));
  }

  BodyFields body(request.body);
  if (action == "move") {
    const std::string from = body.path("from");
    const std::string to = body.path("to");
    if (auto refused = body.refusal()) return *refused;
    auto moved = fs->move(from, to);
    if (!moved) return fileErrorResponse(moved.error());
    return noContent();
  }
  const std::string path = body.path("path");
  const bool option = body.flag(action == "mkdir" ? "parents" : "recursive");
  if (auto refused = body.refusal()) return *refused;
  if (action == "mkdir") {
    auto made = fs->makeDirectory(path, option);
    if (!made) return fileErrorResponse(made.error());
    return jsonResponse(201, nlohmann::json{{"path", path}}.dump());
  }
  auto removed = fs->remove(path, option);
  if (!removed) return fileErrorResponse(removed.error());
  return noContent();
}

}  // namespace bai::storage::files
