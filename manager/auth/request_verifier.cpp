#include "request_verifier.hpp"

#include <bai/request_signing.hpp>

#include <openssl/crypto.h>

#include <algorithm>
#include <cstdlib>

namespace bai::manager {
namespace {

namespace auth = bai::auth;

Failure<AuthError> refuse(std::string type, std::string detail) {
  return Failure<AuthError>{AuthError{std::move(type), std::move(detail)}};
}

std::string lowerCase(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

bool isLowerHex(std::string_view text) {
  return text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// Details echo parts of these headers, and a detail must be UTF-8 text to become JSON.
bool isPrintableAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(' ');
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

// "300.901" for 300901 ms; the sign is left to the words around it.
std::string secondsText(std::chrono::system_clock::duration skew) {
  const auto millis = std::llabs(std::chrono::duration_cast<std::chrono::milliseconds>(skew).count());
  std::string fraction = std::to_string(millis % 1000);
  fraction.insert(0, 3 - fraction.size(), '0');
  return std::to_string(millis / 1000) + "." + fraction;
}

struct Credentials {
  std::string accessKey;
  std::string signature;
};

// "BAI-HMAC-SHA256 Credential=<access key>, Signature=<64 lower-case hex>"
Result<Credentials, AuthError> parseAuthorization(std::string_view value) {
  const std::string expected = std::string(auth::kAuthorizationScheme) + " Credential=<access key>, Signature=<hex>";
  auto malformed = [&](std::string_view why) {
    return refuse("malformed-authorization", std::string(why) + "; expected " + expected);
  };
  const std::string scheme = std::string(auth::kAuthorizationScheme) + ' ';
  if (!value.starts_with(scheme)) return malformed("unknown scheme");
  std::optional<std::string> accessKey, signature;
  std::string_view rest = value.substr(scheme.size());
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view part = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto equals = part.find('=');
    if (equals == std::string_view::npos) return malformed("a parameter without '='");
    const std::string_view name = part.substr(0, equals), field = part.substr(equals + 1);
    std::optional<std::string>* slot = name == "Credential" ? &accessKey : name == "Signature" ? &signature : nullptr;
    if (slot == nullptr) return malformed("unknown parameter '" + std::string(name.substr(0, 32)) + "'");
    if (slot->has_value()) return malformed("parameter '" + std::string(name) + "' given twice");
    *slot = std::string(field);
  }
  if (!accessKey || accessKey->empty() || accessKey->size() > 128 || accessKey->find(' ') != std::string::npos) {
    return malformed("no access key, or not one word of at most 128 characters");
  }
  if (!signature || signature->size() != 64 || !isLowerHex(*signature)) {
    return malformed("the signature is not 64 lower-case hex digits");
  }
  return Credentials{std::move(*accessKey), std::move(*signature)};
}

}  // namespace

RequestVerifier::RequestVerifier(KeyLookup lookup, std::chrono::seconds window, Clock clock, std::size_t nonceCapacity,
                                 NonceJournal* journal)
    : lookup_(std::move(lookup)), window_(window), clock_(std::move(clock)), nonces_(nonceCapacity), journal_(journal) {}

Result<void> RequestVerifier::restoreNonces() {
  if (journal_ == nullptr) return {};
  const auto now = clock_();
  auto kept = journal_->unexpired(now);
  if (!kept) return fail(kept.error().code, "the nonces of recent requests could not be read: " + kept.error().message);
  nonces_.restore(*kept, now);
  return {};
}

Result<Principal, AuthError> RequestVerifier::verify(std::string_view method, std::string_view target,
                                                     const std::map<std::string, std::string>& headers,
                                                     std::string_view body) {
  static const std::string kAuthorization = lowerCase(auth::kAuthorizationHeader);
  static const std::string kDate = lowerCase(auth::kDateHeader);
  static const std::string kNonce = lowerCase(auth::kNonceHeader);
  static const std::string kContentSha256 = lowerCase(auth::kContentSha256Header);

  for (const std::string* name : {&kAuthorization, &kDate, &kNonce, &kContentSha256}) {
    if (!headers.contains(*name)) {
      return refuse("missing-credentials", "no " + *name + " header: every request but /healthz must be signed");
    }
  }
  if (!isPrintableAscii(headers.at(kAuthorization))) {
    return refuse("malformed-authorization", kAuthorization + " must be printable ASCII");
  }
  if (!isPrintableAscii(headers.at(kDate))) return refuse("bad-date", kDate + " must be printable ASCII");
  auto credentials = parseAuthorization(headers.at(kAuthorization));
  if (!credentials) return Failure<AuthError>{std::move(credentials.error())};
  const std::string& date = headers.at(kDate);
  const std::string& nonce = headers.at(kNonce);
  const std::string& contentSha256 = headers.at(kContentSha256);
  if (nonce.size() < 2 * auth::kNonceBytes || nonce.size() > 128 || nonce.size() % 2 != 0 || !isLowerHex(nonce)) {
    return refuse("bad-nonce", kNonce + " must be 16 to 64 random bytes as lower-case hex");
  }
  if (contentSha256.size() != 64 || !isLowerHex(contentSha256)) {
    return refuse("bad-body-hash", kContentSha256 + " must be the body's SHA-256 as 64 lower-case hex digits");
  }

  const std::optional<KeyInfo> key = lookup_(credentials->accessKey);
  if (!key) return refuse("unknown-access-key", "no keypair with access key " + credentials->accessKey);
  if (!key->active) return refuse("inactive-keypair", "the keypair " + credentials->accessKey + " is deactivated");

  const auto sentAt = auth::parseRfc3339Utc(date);
  if (!sentAt) return refuse("bad-date", kDate + ": " + sentAt.error().message);
  const auto now = clock_();
  // Compared at the clock's own precision: truncated to seconds, a date 300.9 s ahead
  // passed a 300 s window and outlived its nonce.
  const auto skew = *sentAt - now;
  if (skew > window_ || skew < -window_) {
    return refuse("clock-skew", kDate + " is " + secondsText(skew) + " s " + (skew.count() > 0 ? "ahead of" : "behind") +
                                    " the server's clock (allowed: " + std::to_string(window_.count()) +
                                    " s); check the client's clock");
  }

  if (auth::sha256Hex(body) != contentSha256) {
    return refuse("bad-body-hash", kContentSha256 + " does not match the body received");
  }

  const std::string expected =
      auth::hmacSha256Hex(key->secretKey, auth::stringToSign(method, target, date, nonce, contentSha256));
  // Constant time, so that response timing does not reveal how many leading digits match.
  if (expected.size() != credentials->signature.size() ||
      CRYPTO_memcmp(expected.data(), credentials->signature.data(), expected.size()) != 0) {
    return refuse("bad-signature", "the signature does not match the request; check the secret key and that "
                                   "method, path and query, date, nonce and body hash are signed as sent");
  }

  // The request's date stays acceptable until one window after it; so does its nonce.
  if (auto fresh = rememberNonce({NonceCache::keyOf(credentials->accessKey, nonce), *sentAt + window_}, now); !fresh) {
    return Failure<AuthError>{std::move(fresh.error())};
  }
  return Principal{credentials->accessKey, key->admin};
}

Result<void, AuthError> RequestVerifier::rememberNonce(const RememberedNonce& nonce,
                                                       std::chrono::system_clock::time_point now) {
  switch (nonces_.remember(nonce.key, nonce.expiresAt, now)) {
    case NonceStatus::Fresh: break;
    case NonceStatus::Replayed: return refuse("replayed-nonce", "this nonce was already used; sign each request anew");
    case NonceStatus::CacheFull: return refuse("nonce-cache-full", "too many recent requests; retry later");
  }
  if (journal_ == nullptr) return {};
  // Kept before the request is served: a manager killed after serving it must still know it.
  auto recorded = journal_->record(nonce, now);
  if (recorded) return {};
  if (recorded.error().code == ErrorCode::Conflict) {
    return refuse("replayed-nonce", "this nonce was already used; sign each request anew");
  }
  return refuse("nonce-not-saved", "the request's nonce could not be saved; retry later");
}

}  // namespace bai::manager
