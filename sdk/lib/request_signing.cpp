#include <bai/request_signing.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cstdio>
#include <stdexcept>

namespace bai::auth {
namespace {

using std::chrono::system_clock;

std::string toHex(const unsigned char* bytes, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    hex += kDigits[bytes[i] >> 4];
    hex += kDigits[bytes[i] & 0x0f];
  }
  return hex;
}

// OpenSSL may treat a null pointer as "no key" even with length 0, and an empty
// string_view's data() may be null.
const unsigned char* bytesOf(std::string_view text) {
  static constexpr unsigned char kNothing = 0;
  return text.empty() ? &kNothing : reinterpret_cast<const unsigned char*>(text.data());
}

std::string randomNonceHex() {
  std::array<unsigned char, kNonceBytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed: no nonce for request signing");
  }
  return toHex(bytes.data(), bytes.size());
}

constexpr int kFirstYear = 1900;
constexpr int kLastYear = 2199;

// Parses exactly `width` decimal digits at text[pos]; -1 when any is not a digit.
int digits(std::string_view text, std::size_t pos, std::size_t width) {
  int value = 0;
  for (std::size_t i = pos; i < pos + width; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace

std::string sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(bytesOf(data), data.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest(SHA-256) failed");  // only without a working libcrypto
  }
  return toHex(digest.data(), size);
}

std::string hmacSha256Hex(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), bytesOf(key), static_cast<int>(key.size()), bytesOf(data), data.size(), mac.data(),
           &size) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");  // only without a working libcrypto
  }
  return toHex(mac.data(), size);
}

std::string stringToSign(std::string_view method, std::string_view pathAndQuery, std::string_view date,
                         std::string_view nonce, std::string_view bodySha256Hex) {
  std::string text;
  text.reserve(method.size() + pathAndQuery.size() + date.size() + nonce.size() + bodySha256Hex.size() + 4);
  for (char c : method) text += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  for (std::string_view field : {pathAndQuery, date, nonce, bodySha256Hex}) {
    text += '\n';
    text += field;
  }
  return text;
}

std::string formatRfc3339Utc(system_clock::time_point time) {
  const auto seconds = std::chrono::floor<std::chrono::seconds>(time);
  const auto day = std::chrono::floor<std::chrono::days>(seconds);
  const std::chrono::year_month_day date{day};
  const std::chrono::hh_mm_ss clock{seconds - day};
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()));
  return text.data();
}

Result<system_clock::time_point> parseRfc3339Utc(std::string_view text) {
  auto refuse = [&](std::string_view why) {
    const std::string shown(text.substr(0, 40));
    return fail(ErrorCode::InvalidArgument, "'" + shown + (text.size() > 40 ? "...'" : "'") +
                                                " is not an RFC 3339 UTC time like 2026-11-28T16:40:00Z: " +
                                                std::string(why));
  };
  static constexpr std::string_view kShape = "0000-00-00T00:00:00Z";
  if (text.empty() || text.back() != 'Z') return refuse("the time zone must be Z (UTC), no offsets");
  if (text.size() != kShape.size()) return refuse("expected exactly YYYY-MM-DDTHH:MM:SSZ, no fractional seconds");
  for (std::size_t i = 0; i < kShape.size(); ++i) {
    if (kShape[i] != '0' && text[i] != kShape[i]) return refuse("expected exactly YYYY-MM-DDTHH:MM:SSZ");
  }
  const int year = digits(text, 0, 4), month = digits(text, 5, 2), day = digits(text, 8, 2);
  const int hour = digits(text, 11, 2), minute = digits(text, 14, 2), second = digits(text, 17, 2);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return refuse("non-digit in a field");
  // Checked before any arithmetic: a time_point counts nanoseconds in 64 bits and wraps
  // after the year 2262, so a far date could land back inside the accepted window.
  if (year < kFirstYear || year > kLastYear) {
    return refuse("the year must be " + std::to_string(kFirstYear) + " to " + std::to_string(kLastYear));
  }
  const std::chrono::year_month_day date{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) return refuse("no such date");
  if (hour > 23 || minute > 59 || second > 59) return refuse("no such time of day");
  return system_clock::time_point{std::chrono::sys_days{date} + std::chrono::hours{hour} +
                                  std::chrono::minutes{minute} + std::chrono::seconds{second}};
}

std::map<std::string, std::string> signRequest(const SigningKey& key, std::string_view method,
                                               std::string_view pathAndQuery, std::string_view body,
                                               system_clock::time_point now) {
  return signRequest(key, method, pathAndQuery, body, now, randomNonceHex());
}

std::map<std::string, std::string> signRequest(const SigningKey& key, std::string_view method,
                                               std::string_view pathAndQuery, std::string_view body,
                                               system_clock::time_point now, std::string_view nonce) {
  std::string date = formatRfc3339Utc(now);
  std::string bodyHash = sha256Hex(body);
  const std::string signature = hmacSha256Hex(key.secretKey, stringToSign(method, pathAndQuery, date, nonce, bodyHash));
  return {
      {std::string(kAuthorizationHeader),
       std::string(kAuthorizationScheme) + " Credential=" + key.accessKey + ", Signature=" + signature},
      {std::string(kDateHeader), std::move(date)},
      {std::string(kNonceHeader), std::string(nonce)},
      {std::string(kContentSha256Header), std::move(bodyHash)},
  };
}

}  // namespace bai::auth
