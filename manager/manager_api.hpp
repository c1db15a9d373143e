// bai-manager's HTTP API: a route table (method, path pattern, who may call, handler),
// authentication (the cluster token for agents, signed keypair requests for users), and
// the one place where a domain error kind becomes an HTTP status and body.
#pragma once

#include "auth/request_verifier.hpp"
#include "domain_error.hpp"
#include "http_server.hpp"
#include "manager.hpp"

#include <bai/protocol.hpp>

#include <memory>

namespace bai::manager {

// The HTTP status and problem document of a domain error.
int httpStatusOf(ErrorKind kind);
protocol::ApiError apiErrorOf(const DomainError& error);

// `manager` must outlive the handler.
http::AsyncHandler managerApi(Manager& manager, const std::string& clusterToken);

}  // namespace bai::manager
