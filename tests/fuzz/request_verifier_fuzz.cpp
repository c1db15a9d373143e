// RequestVerifier::verify on any signed-request headers. The input is one field a line:
// method, target, Authorization, X-BAI-Date, X-BAI-Nonce, X-BAI-Content-SHA256, then the
// body (the rest). A header given as "-" is left out; an Authorization of "!" is replaced
// by a valid signature of the other fields with the test key, and a body hash of "!" by
// the body's, so that the fuzzer reaches the checks behind the signature. A request
// accepted once is refused as a replay the second time.
#include "fuzz_support.hpp"

#include "auth/request_verifier.hpp"

#include <bai/request_signing.hpp>

namespace {

namespace auth = bai::auth;
using bai::manager::KeyInfo;

constexpr std::string_view kAccessKey = "AKFUZZ";
constexpr std::string_view kSecretKey = "fuzz-secret";

std::optional<KeyInfo> lookup(const std::string& accessKey) {
  if (accessKey == kAccessKey) return KeyInfo{std::string(kSecretKey), true, true};
  if (accessKey == "AKINACTIVE") return KeyInfo{std::string(kSecretKey), false, false};
  return std::nullopt;
}

std::chrono::system_clock::time_point fixedNow() {
  return *auth::parseRfc3339Utc("2026-11-28T16:40:00Z");
}

std::string_view field(const std::vector<std::string_view>& lines, std::size_t index) {
  return index < lines.size() ? lines[index] : std::string_view("-");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = bai::fuzz::textOf(data, size);
  const std::vector<std::string_view> lines = bai::fuzz::splitLines(text);
  const std::string_view method = field(lines, 0), target = field(lines, 1);
  std::string_view body;
  if (lines.size() > 6) body = text.substr(static_cast<std::size_t>(lines[6].data() - text.data()));

  std::map<std::string, std::string> headers;
  std::string date(field(lines, 3)), nonce(field(lines, 4)), bodyHash(field(lines, 5));
  if (bodyHash == "!") bodyHash = auth::sha256Hex(body);
  std::string authorization(field(lines, 2));
  if (authorization == "!") {
    authorization = std::string(auth::kAuthorizationScheme) + " Credential=" + std::string(kAccessKey) +
                    ", Signature=" +
                    auth::hmacSha256Hex(kSecretKey, auth::stringToSign(method, target, date, nonce, bodyHash));
  }
  const std::pair<std::string_view, const std::string*> fields[] = {
      {"authorization", &authorization}, {"x-bai-date", &date}, {"x-bai-nonce", &nonce},
      {"x-bai-content-sha256", &bodyHash}};
  for (const auto& [name, value] : fields) {
    if (*value != "-") headers.emplace(name, *value);
  }

  bai::manager::RequestVerifier verifier(lookup, bai::manager::RequestVerifier::kDefaultWindow, fixedNow);
  const auto first = verifier.verify(method, target, headers, body);
  if (!first) return 0;
  bai::fuzz::require(first->accessKey == kAccessKey && first->admin, "only the test key is accepted");
  const auto second = verifier.verify(method, target, headers, body);
  bai::fuzz::require(!second && second.error().type == "replayed-nonce", "a replayed request is refused");
  return 0;
}
