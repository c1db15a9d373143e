#include "session_document.hpp"

#include "bounded_json.hpp"

#include <bai/plugin.hpp>

namespace bai::accel {

using nlohmann::json;

void failInput(const std::string& message) { throw plugin::StatusError(BAI_ERR_INVALID_ARGUMENT, message); }

namespace {

json sessionObject(std::string_view sessionJson) {
  internal::BoundedJson parsed = internal::parseBoundedJson(sessionJson);
  if (!parsed) failInput("the session: " + parsed.error);
  json session = std::move(parsed.document);
  if (!session.is_object()) failInput("the session must be a JSON object");
  auto id = session.find("session_id");
  if (id == session.end() || !id->is_string() || id->get<std::string>().empty()) {
    failInput("session_id: expected a non-empty string");
  }
  return session;
}

}  // namespace

SessionDocument parseSessionDocument(std::string_view sessionJson) {
  json session = sessionObject(sessionJson);
  auto allocation = session.find("allocation");
  if (allocation == session.end() || !allocation->is_object()) failInput("allocation: expected an object");
  return {session["session_id"].get<std::string>(), std::move(*allocation)};
}

std::string sessionIdOf(std::string_view sessionJson) { return sessionObject(sessionJson)["session_id"].get<std::string>(); }

}  // namespace bai::accel
