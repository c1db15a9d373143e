// The one place where a domain error kind becomes an HTTP status and a problem
// document's type and title.
#pragma once

#include "domain_error.hpp"

#include <bai/protocol.hpp>

namespace bai::manager {

int httpStatusOf(ErrorKind kind);
protocol::ApiError apiErrorOf(const DomainError& error);

}  // namespace bai::manager
