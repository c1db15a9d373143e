// bai-manager's HTTP API: routes, authentication (the cluster token for agents, signed
// keypair requests for users) and JSON in and out.
#pragma once

#include "auth/request_verifier.hpp"
#include "http_server.hpp"
#include "manager.hpp"

#include <memory>

namespace bai::manager {

// `manager` must outlive the handler.
http::AsyncHandler managerApi(Manager& manager, const std::string& clusterToken);

}  // namespace bai::manager
