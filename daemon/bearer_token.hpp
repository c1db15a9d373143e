// The cluster token check shared by the agent's RPC and the manager's agent routes.
#pragma once

#include <string_view>

namespace bai {

// True when `authorization` (the header's value) is exactly "Bearer <token>". The bytes
// are compared in constant time, so the answer's timing does not reveal how much of a
// guess was right; only the length may differ in time.
bool bearerTokenMatches(std::string_view authorization, std::string_view token);

}  // namespace bai
