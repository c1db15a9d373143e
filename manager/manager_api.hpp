// bai-manager's HTTP API: a route table (method, path pattern, who may call, handler),
// authentication (the cluster token for agents, signed keypair requests for users); error
// kinds become statuses in api_errors.hpp.
#pragma once

#include "api_errors.hpp"
#include "auth/request_verifier.hpp"
#include "domain_error.hpp"
#include "http_server.hpp"
#include "manager.hpp"

#include <bai/protocol.hpp>

#include <memory>

namespace bai::manager {

struct ApiOptions {
  std::string clusterToken;  // agents' bearer token; never accepted for /metrics
  std::string metricsToken;  // a scraper's bearer token, for GET /metrics only; empty: admins' signed requests only
  std::shared_ptr<const http::ServerCounters> httpCounters;  // the serving http::Server's, shown in /metrics
};

// `manager` must outlive the handler. The nonces of requests accepted by an earlier run
// are read from the manager's store here; a store failure is the error.
Result<http::AsyncHandler> managerApi(Manager& manager, ApiOptions options);
// The same with no metrics token; throws std::runtime_error where the other fails (tests).
http::AsyncHandler managerApi(Manager& manager, const std::string& clusterToken);

}  // namespace bai::manager
