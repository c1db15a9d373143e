#include "agent/session_identity.hpp"

#include <charconv>

namespace bai::core {
namespace {

std::optional<std::uint32_t> parseId(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || value > protocol::kMaxOwnerId) {
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(value);
}

std::string describe(const std::vector<IdRange>& ranges) {
  std::string out;
  for (const IdRange& range : ranges) {
    if (!out.empty()) out += ", ";
    out += std::to_string(range.first);
    if (range.last != range.first) out += "-" + std::to_string(range.last);
  }
  return out;
}

AgentError refused(std::string why) { return {AgentErrorKind::IdentityRefused, std::move(why)}; }

bool inAny(const std::vector<IdRange>& ranges, std::uint32_t id) {
  for (const IdRange& range : ranges) {
    if (range.contains(id)) return true;
  }
  return false;
}

}  // namespace

Result<std::vector<IdRange>> parseIdRanges(const std::vector<std::string>& texts, const std::string& key) {
  std::vector<IdRange> ranges;
  for (const std::string& text : texts) {
    const std::size_t dash = text.find('-');
    auto first = parseId(std::string_view(text).substr(0, dash));
    auto last = dash == std::string::npos ? first : parseId(std::string_view(text).substr(dash + 1));
    if (!first || !last || *last < *first) {
      return fail(ErrorCode::InvalidArgument,
                  key + ": '" + text + "' is not a range of ids such as \"200000-299999\" (at most 4294967294)");
    }
    if (*first == 0) {
      return fail(ErrorCode::InvalidArgument,
                  key + ": '" + text + "' includes 0 (root); root sessions need runtime.allow-root-sessions instead");
    }
    ranges.push_back({*first, *last});
  }
  if (ranges.empty()) return fail(ErrorCode::InvalidArgument, key + ": give at least one range");
  return ranges;
}

AgentResult<protocol::SessionOwner> checkOwner(const std::optional<protocol::SessionOwner>& owner,
                                               const IdentityPolicy& policy) {
  if (!owner) return Failure{refused("the request names no owner (uid, gid): the manager is older than this agent")};
  if (!policy.canSwitchUser) {
    return Failure{refused("this agent does not run as root, so it cannot run sessions as their owners (uid " +
                           std::to_string(owner->uid) + ")")};
  }
  const bool root = owner->uid == 0 || owner->gid == 0;
  if (root && !policy.allowRootSessions) {
    return Failure{refused("uid/gid 0 (root) is refused: sessions run as root only with runtime.allow-root-sessions")};
  }
  if (owner->uid != 0 && !inAny(policy.uidRanges, owner->uid)) {
    return Failure{refused("uid " + std::to_string(owner->uid) + " is outside this agent's runtime.session-uid-ranges (" +
                           describe(policy.uidRanges) + ")")};
  }
  if (owner->gid != 0 && !inAny(policy.gidRanges, owner->gid)) {
    return Failure{refused("gid " + std::to_string(owner->gid) + " is outside this agent's runtime.session-gid-ranges (" +
                           describe(policy.gidRanges) + ")")};
  }
  return *owner;
}

}  // namespace bai::core
