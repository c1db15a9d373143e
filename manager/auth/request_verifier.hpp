// Checks the signature of an API request (format in <bai/request_signing.hpp>) and
// says who made it. Every refusal is an HTTP 401 except "nonce-cache-full" and
// "nonce-not-saved" (503).
#pragma once

#include "nonce_cache.hpp"

#include <bai/result.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace bai::manager {

struct KeyInfo {
  std::string secretKey;
  bool admin = false;
  bool active = true;
};

struct Principal {
  std::string accessKey;
  bool admin = false;
};

struct AuthError {
  // missing-credentials, malformed-authorization, bad-nonce, unknown-access-key,
  // inactive-keypair, bad-date, clock-skew, bad-body-hash, bad-signature,
  // replayed-nonce, nonce-cache-full, nonce-not-saved
  std::string type;
  std::string detail;  // for the client; never holds the secret or the expected signature
};

// Thread-safe as long as the lookup is.
class RequestVerifier {
 public:
  using KeyLookup = std::function<std::optional<KeyInfo>(const std::string& accessKey)>;
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  static constexpr std::chrono::seconds kDefaultWindow{5 * 60};

  // With a `journal` (which must outlive the verifier), each accepted nonce is kept there
  // before verify() answers, and restoreNonces() reads back those of an earlier run.
  explicit RequestVerifier(KeyLookup lookup, std::chrono::seconds window = kDefaultWindow,
                           Clock clock = std::chrono::system_clock::now,
                           std::size_t nonceCapacity = NonceCache::kDefaultCapacity, NonceJournal* journal = nullptr);

  // Call once before serving, so that a request accepted before a restart is no fresher
  // after it.
  Result<void> restoreNonces();

  // `target` is the path and query exactly as on the request line; `headers` have
  // lower-case names. Records the nonce only once everything else has passed, so that a
  // forged request cannot use up a client's nonce.
  Result<Principal, AuthError> verify(std::string_view method, std::string_view target,
                                      const std::map<std::string, std::string>& headers, std::string_view body);

 private:
  Result<void, AuthError> rememberNonce(const RememberedNonce& nonce, std::chrono::system_clock::time_point now);

  KeyLookup lookup_;
  std::chrono::seconds window_;
  Clock clock_;
  NonceCache nonces_;
  NonceJournal* journal_;
};

}  // namespace bai::manager
