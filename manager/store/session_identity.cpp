#include "session_identity.hpp"

#include <charconv>

namespace bai::manager {
namespace {

// Digits only: "+5", " 5" and "5.0" are not ids.
std::optional<std::int64_t> wholeNumber(std::string_view text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

}  // namespace

Result<IdentityPolicy> parseUidRange(std::string_view text, std::string_view key) {
  const std::string where = std::string(key) + ": '" + std::string(text) + "'";
  const auto dash = text.find('-');
  if (dash == std::string_view::npos) return fail(ErrorCode::InvalidArgument, where + " is not FIRST-LAST, e.g. 200000-299999");
  const auto first = wholeNumber(text.substr(0, dash)), last = wholeNumber(text.substr(dash + 1));
  if (!first || !last) return fail(ErrorCode::InvalidArgument, where + " is not two whole numbers FIRST-LAST");
  if (*first < kMinRangeUid || *first > *last || *last > kMaxSessionId) {
    return fail(ErrorCode::InvalidArgument,
                where + " must satisfy " + std::to_string(kMinRangeUid) + " <= FIRST <= LAST <= " + std::to_string(kMaxSessionId));
  }
  IdentityPolicy policy;
  policy.firstUid = static_cast<std::uint32_t>(*first);
  policy.lastUid = static_cast<std::uint32_t>(*last);
  return policy;
}

Result<std::optional<std::uint32_t>> parseSessionGid(std::string_view text, std::string_view key) {
  if (text == "uid") return std::optional<std::uint32_t>();
  const auto gid = wholeNumber(text);
  if (!gid || *gid < 1 || *gid > kMaxSessionId) {
    return fail(ErrorCode::InvalidArgument, std::string(key) + ": '" + std::string(text) +
                                                "' is not \"uid\" (each keypair its own group) or a gid from 1 to " +
                                                std::to_string(kMaxSessionId));
  }
  return std::optional<std::uint32_t>(static_cast<std::uint32_t>(*gid));
}

}  // namespace bai::manager
