// Signing of bai-manager API requests, shared by every client (bai CLI, libbai) and by
// the manager, which verifies. Every request except GET /healthz carries four headers:
//
//   X-BAI-Date:           the client's clock, RFC 3339 UTC to the second, exactly
//                         YYYY-MM-DDTHH:MM:SSZ (e.g. 2026-11-28T16:40:00Z); the manager
//                         refuses dates more than 5 minutes from its own clock.
//   X-BAI-Nonce:          16 random bytes (or more, up to 64) as lower-case hex, never
//                         reused with the same access key; the manager refuses replays.
//   X-BAI-Content-SHA256: lower-case hex SHA-256 of the body bytes as sent (of the empty
//                         string when there is no body).
//   Authorization:        BAI-HMAC-SHA256 Credential=<access key>, Signature=<hex>
//
// Signature = lower-case hex HMAC-SHA256, keyed with the secret key's text as bytes, of
// the string to sign: these five fields joined by "\n" (LF, no trailing newline):
//
//   <METHOD>                 the HTTP method in ASCII upper case, e.g. GET
//   <path and query>         the request target exactly as on the request line, e.g.
//                            /v1/sessions?limit=10 (no decoding, re-encoding or sorting)
//   <X-BAI-Date value>       as sent
//   <X-BAI-Nonce value>      as sent
//   <X-BAI-Content-SHA256>   as sent
//
// Example: GET /v1/sessions?limit=10 with no body, signed at 2026-11-28T16:40:00Z with
// nonce 00112233445566778899aabbccddeeff, signs
//   "GET\n/v1/sessions?limit=10\n2026-11-28T16:40:00Z\n00112233445566778899aabbccddeeff\n"
//   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
// (tests/manager/request_signing_test.cpp pins the resulting signature for a test key).
//
// All functions are thread-safe and take their views for the call only.
#pragma once

#include <bai/result.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace bai::auth {

inline constexpr std::string_view kAuthorizationHeader = "Authorization";
inline constexpr std::string_view kDateHeader = "X-BAI-Date";
inline constexpr std::string_view kNonceHeader = "X-BAI-Nonce";
inline constexpr std::string_view kContentSha256Header = "X-BAI-Content-SHA256";
inline constexpr std::string_view kAuthorizationScheme = "BAI-HMAC-SHA256";
inline constexpr std::size_t kNonceBytes = 16;

struct SigningKey {
  std::string accessKey;
  std::string secretKey;
};

std::string sha256Hex(std::string_view data);
std::string hmacSha256Hex(std::string_view key, std::string_view data);

// The five fields above joined by "\n", method upper-cased; the other fields verbatim.
std::string stringToSign(std::string_view method, std::string_view pathAndQuery, std::string_view date,
                         std::string_view nonce, std::string_view bodySha256Hex);

// YYYY-MM-DDTHH:MM:SSZ; sub-second precision is truncated.
std::string formatRfc3339Utc(std::chrono::system_clock::time_point time);
// Accepts exactly YYYY-MM-DDTHH:MM:SSZ: no offsets other than Z, no fractional seconds,
// no leap second 60, years 1900 to 2199 only. Anything else is ErrorCode::InvalidArgument.
Result<std::chrono::system_clock::time_point> parseRfc3339Utc(std::string_view text);

// The four headers above, keyed by the names in the constants, for a request made at
// `now`, with a fresh random nonce. Throws std::runtime_error if the system random
// number generator fails (OpenSSL RAND_bytes), which a working Linux never does.
std::map<std::string, std::string> signRequest(const SigningKey& key, std::string_view method,
                                               std::string_view pathAndQuery, std::string_view body,
                                               std::chrono::system_clock::time_point now);
// The same with a given nonce: for tests and known-answer vectors only, since a reused
// nonce is refused by the manager.
std::map<std::string, std::string> signRequest(const SigningKey& key, std::string_view method,
                                               std::string_view pathAndQuery, std::string_view body,
                                               std::chrono::system_clock::time_point now,
                                               std::string_view nonce);

}  // namespace bai::auth
