// How keypairs get the uid/gid their sessions run under (each keypair is a user until
// users exist): the range the manager allocates from and the gid it gives. Shared by
// the configuration, the store (which allocates) and the admin API (which validates).
#pragma once

#include <bai/protocol.hpp>
#include <bai/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bai::manager {

// The highest id a session may run under (the protocol's rule).
inline constexpr std::int64_t kMaxSessionId = protocol::kMaxOwnerId;
// The lowest first uid of an allocation range: below it live the system's accounts.
inline constexpr std::int64_t kMinRangeUid = 1000;

struct IdentityPolicy {
  std::uint32_t firstUid = 200000;
  std::uint32_t lastUid = 299999;
  // nullopt: gid = uid (each user its own group); else every allocated keypair's gid.
  std::optional<std::uint32_t> sessionGid = std::nullopt;

  std::uint32_t gidFor(std::uint32_t uid) const { return sessionGid.value_or(uid); }
  std::string rangeText() const { return std::to_string(firstUid) + "-" + std::to_string(lastUid); }
};

// "200000-299999": two integers, kMinRangeUid <= first <= last <= kMaxSessionId; an
// error names `key`.
Result<IdentityPolicy> parseUidRange(std::string_view text, std::string_view key);
// "uid" (gid = uid) or one gid from 1 to kMaxSessionId for every keypair; an error names `key`.
Result<std::optional<std::uint32_t>> parseSessionGid(std::string_view text, std::string_view key);

}  // namespace bai::manager
