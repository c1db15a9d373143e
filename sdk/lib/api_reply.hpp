// How libbai-client reads the manager's error documents, shared by its request calls
// (client.cpp) and its streams (session_stream.cpp), whose refused upgrades carry the
// same documents. Internal: outside namespace bai::client, so the version script keeps
// it out of the library's exports.
#pragma once

#include <bai/client.hpp>

#include <string>

namespace bai::client_internal {

// The manager's {type, title, detail}, or what can be said about a body that is not one.
client::ApiError errorFromReply(int status, const std::string& body);

}  // namespace bai::client_internal
