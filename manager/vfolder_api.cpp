#include "vfolder_api.hpp"

#include "api_errors.hpp"
#include "parse_json.hpp"
#include "vfolder_views.hpp"

#include <nlohmann/json.hpp>

namespace bai::manager {
namespace {

using http::Request;
using http::Response;
using Json = nlohmann::json;

Response json(int status, std::string body) { return Response{status, "application/json", std::move(body), {}}; }
Response error(const DomainError& failure) { return json(httpStatusOf(failure.kind), problemJson(failure)); }
Response noContent() { return Response{204, "", "", {}}; }

template <class T>
Response reply(int status, const Outcome<T>& result, Json (*toJson)(const T&)) {
  return result ? json(status, toJson(*result).dump()) : error(result.error());
}

Outcome<Json> objectBody(const Request& request) {
  auto doc = parseJson(request.body);
  if (!doc) return refuse(ErrorKind::InvalidRequest, doc.error().message);
  if (!doc->is_object()) return refuse(ErrorKind::InvalidRequest, "the body is not a JSON object");
  return std::move(*doc);
}

// ?name=0|1 (absent: false).
Outcome<bool> flag(const Request& request, const std::string& name) {
  auto it = request.query.find(name);
  if (it == request.query.end()) return false;
  if (it->second != "0" && it->second != "1") return refuse(ErrorKind::InvalidRequest, name + " must be 0 or 1", name);
  return it->second == "1";
}

std::string queryValue(const Request& request, const std::string& name) {
  auto it = request.query.find(name);
  return it == request.query.end() ? "" : it->second;
}

Response createGrant(VfolderService& vfolders, const Request& request, const std::string& ref, const Caller& caller) {
  auto body = objectBody(request);
  if (!body) return error(body.error());
  const Json& operation = (*body)["operation"];
  const Json& path = body->contains("path") ? (*body)["path"] : Json("");
  if (!operation.is_string() || (operation != "upload" && operation != "download")) {
    return error(DomainError{ErrorKind::InvalidRequest, "operation must be \"upload\" or \"download\"", "operation"});
  }
  if (!path.is_string()) return error(DomainError{ErrorKind::InvalidRequest, "path must be a string", "path"});
  for (const auto& [key, value] : body->items()) {
    if (key != "operation" && key != "path") {
      return error(DomainError{ErrorKind::InvalidRequest, "unknown field '" + key + "' (operation, path)", key});
    }
  }
  const auto kind = operation == "upload" ? storage_protocol::GrantOperation::Upload : storage_protocol::GrantOperation::Download;
  return reply(200, vfolders.grant(caller, ref, kind, path.get<std::string>()), grantToJson);
}

Response share(VfolderService& vfolders, const Request& request, const std::string& ref, const Caller& caller) {
  auto body = objectBody(request);
  if (!body) return error(body.error());
  std::string accessKey;
  std::optional<storage_protocol::Permission> permission;
  for (const auto& [key, value] : body->items()) {
    if (key == "access_key" && value.is_string()) {
      accessKey = value.get<std::string>();
    } else if (key == "permission" && value.is_string() && storage_protocol::parsePermission(value.get<std::string>())) {
      permission = *storage_protocol::parsePermission(value.get<std::string>());
    } else {
      return error(DomainError{ErrorKind::InvalidRequest,
                               R"(expected {"access_key": KEY, "permission": "ro"|"rw"}, not ')" + key + "': " + value.dump(), key});
    }
  }
  if (accessKey.empty()) return error(DomainError{ErrorKind::InvalidRequest, "access_key is required", "access_key"});
  return reply(200, vfolders.share(caller, ref, accessKey, permission), vfolderToJson);
}

}  // namespace

std::vector<UserRoute> vfolderRoutes(VfolderService& vfolders) {
  VfolderService* v = &vfolders;
  auto fileChange = [v](const char* operation) {
    return [v, operation](const Request& request, const std::vector<std::string>& params, const Caller& caller) {
      auto status = v->changeFiles(caller, params[0], operation, request.body);
      if (!status) return error(status.error());
      return *status == 204 ? noContent() : json(*status, "{}");
    };
  };
  return {
      {"POST", "/v1/vfolders",
       [v](const Request& request, const std::vector<std::string>&, const Caller& caller) {
         auto parsed = parseNewVfolder(request.body);
         if (!parsed) return error(parsed.error());
         return reply(201, v->create(caller, *parsed), vfolderToJson);
       }},
      {"GET", "/v1/vfolders",
       [v](const Request& request, const std::vector<std::string>&, const Caller& caller) {
         auto all = flag(request, "all");
         if (!all) return error(all.error());
         if (*all && !caller.admin) return json(403, protocol::ApiError{"forbidden", "Admins only", "?all=1 needs an admin keypair"}.toJson());
         auto folders = v->list(caller, *all);
         if (!folders) return error(folders.error());
         Json out = Json::array();
         for (const auto& folder : *folders) out.push_back(vfolderToJson(folder));
         return json(200, Json{{"vfolders", out}}.dump());
       }},
      {"GET", "/v1/vfolders/{}",
       [v](const Request&, const std::vector<std::string>& params, const Caller& caller) {
         return reply(200, v->info(caller, params[0]), vfolderToJson);
       }},
      {"DELETE", "/v1/vfolders/{}",
       [v](const Request&, const std::vector<std::string>& params, const Caller& caller) {
         auto removed = v->remove(caller, params[0]);
         return removed ? noContent() : error(removed.error());
       }},
      {"POST", "/v1/vfolders/{}/shares",
       [v](const Request& request, const std::vector<std::string>& params, const Caller& caller) {
         return share(*v, request, params[0], caller);
       }},
      {"DELETE", "/v1/vfolders/{}/shares/{}",
       [v](const Request&, const std::vector<std::string>& params, const Caller& caller) {
         auto removed = v->unshare(caller, params[0], params[1]);
         return removed ? noContent() : error(removed.error());
       }},
      {"POST", "/v1/vfolders/{}/grants",
       [v](const Request& request, const std::vector<std::string>& params, const Caller& caller) {
         return createGrant(*v, request, params[0], caller);
       }},
      {"GET", "/v1/vfolders/{}/files",
       [v](const Request& request, const std::vector<std::string>& params, const Caller& caller) {
         auto recursive = flag(request, "recursive");
         if (!recursive) return error(recursive.error());
         auto entries = v->listFiles(caller, params[0], queryValue(request, "path"), *recursive);
         if (!entries) return error(entries.error());
         return json(200, storage_protocol::entriesToJson(*entries));
       }},
      {"POST", "/v1/vfolders/{}/mkdir", fileChange("mkdir")},
      {"POST", "/v1/vfolders/{}/delete", fileChange("delete")},
      {"POST", "/v1/vfolders/{}/move", fileChange("move")},
      {"GET", "/v1/storage/hosts",
       [v](const Request&, const std::vector<std::string>&, const Caller&) {
         auto hosts = v->hosts();
         return hosts ? json(200, hostsToJson(*hosts).dump()) : error(hosts.error());
       }},
  };
}

}  // namespace bai::manager
