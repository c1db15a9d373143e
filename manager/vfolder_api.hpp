// The folder routes of the user API (/v1/vfolders..., /v1/storage/hosts): each a signed
// keypair's route that manager_api.cpp's table takes in. Handlers block on the proxy's
// answer (bounded by the storage client's timeout), never under the ledger's lock.
#pragma once

#include "caller.hpp"
#include "http_server.hpp"
#include "vfolder_service.hpp"

#include <functional>
#include <string>
#include <vector>

namespace bai::manager {

struct UserRoute {
  const char* method;
  const char* pattern;  // "{}" is one non-empty segment, handed to the handler in order
  std::function<http::Response(const http::Request&, const std::vector<std::string>& params, const Caller& caller)> handler;
};

// `vfolders` must outlive the routes.
std::vector<UserRoute> vfolderRoutes(VfolderService& vfolders);

}  // namespace bai::manager
