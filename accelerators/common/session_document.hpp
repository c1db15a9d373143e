// The session document of prepare_session, release_session and session_measures
// ({"session_id", "allocation"}, accelerator.h), read the same way by every plugin.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace bai::accel {

// Throws plugin::StatusError(BAI_ERR_INVALID_ARGUMENT, message): bad input from the host.
[[noreturn]] void failInput(const std::string& message);

struct SessionDocument {
  std::string id;
  nlohmann::json allocation;  // an object: slot -> device id -> amount
};

// Checks the shape: an object with a non-empty session_id and an allocation object.
SessionDocument parseSessionDocument(std::string_view sessionJson);

// Only the session_id, for calls that look the session up (release, measures).
std::string sessionIdOf(std::string_view sessionJson);

}  // namespace bai::accel
