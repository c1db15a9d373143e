// Names of the store's status enums as they appear in the database and on the wire.
#include "store.hpp"

#include <array>
#include <utility>

namespace bai::manager {
namespace {

constexpr std::array<std::pair<SessionStatus, const char*>, 8> kSessionStatusNames{{
    {SessionStatus::Pending, "PENDING"},
    {SessionStatus::Scheduled, "SCHEDULED"},
    {SessionStatus::Preparing, "PREPARING"},
    {SessionStatus::Running, "RUNNING"},
    {SessionStatus::Terminating, "TERMINATING"},
    {SessionStatus::Terminated, "TERMINATED"},
    {SessionStatus::Cancelled, "CANCELLED"},
    {SessionStatus::Error, "ERROR"},
}};

constexpr std::array<std::pair<AgentStatus, const char*>, 2> kAgentStatusNames{{
    {AgentStatus::Alive, "ALIVE"},
    {AgentStatus::Lost, "LOST"},
}};

}  // namespace

const char* sessionStatusName(SessionStatus status) {
  for (const auto& [value, name] : kSessionStatusNames) {
    if (value == status) return name;
  }
  return "UNKNOWN";
}

Result<SessionStatus> parseSessionStatus(std::string_view text) {
  for (const auto& [value, name] : kSessionStatusNames) {
    if (text == name) return value;
  }
  return fail(ErrorCode::InvalidArgument, "unknown session status '" + std::string(text) + "'");
}

bool isFinal(SessionStatus status) {
  return status == SessionStatus::Terminated || status == SessionStatus::Cancelled || status == SessionStatus::Error;
}

const char* agentStatusName(AgentStatus status) {
  for (const auto& [value, name] : kAgentStatusNames) {
    if (value == status) return name;
  }
  return "UNKNOWN";
}

Result<AgentStatus> parseAgentStatus(std::string_view text) {
  for (const auto& [value, name] : kAgentStatusNames) {
    if (text == name) return value;
  }
  return fail(ErrorCode::InvalidArgument, "unknown agent status '" + std::string(text) + "'");
}

}  // namespace bai::manager
