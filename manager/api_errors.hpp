// The one place where a domain error kind becomes an HTTP status and a problem
// document's type and title.
#pragma once

#include "domain_error.hpp"

#include <bai/protocol.hpp>

namespace bai::manager {

int httpStatusOf(ErrorKind kind);
protocol::ApiError apiErrorOf(const DomainError& error);
// The problem document of `error`; one about a request's field names it in "field" (an
// extension member, as RFC 9457 allows).
std::string problemJson(const DomainError& error);

}  // namespace bai::manager
