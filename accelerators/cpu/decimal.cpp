#include "decimal.hpp"

#include <charconv>

namespace bai::cpu {
namespace {

constexpr std::size_t kMaxFractionDigits = 6;
// 10^19 millionths-scaled stays far below 2^128, so accumulation cannot overflow.
constexpr std::size_t kMaxIntegerDigits = 19;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

std::optional<Micros> parseDigits(std::string_view digits) {
  Micros value = 0;
  for (char c : digits) {
    if (!isDigit(c)) return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value;
}

}  // namespace

std::optional<Micros> parseDecimal(std::string_view text) {
  const std::size_t dot = text.find('.');
  const std::string_view integer = text.substr(0, dot);
  const std::string_view fraction = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (integer.empty() || integer.size() > kMaxIntegerDigits) return std::nullopt;
  if (dot != std::string_view::npos && (fraction.empty() || fraction.size() > kMaxFractionDigits)) return std::nullopt;
  const auto whole = parseDigits(integer);
  auto part = parseDigits(fraction);
  if (!whole || !part) return std::nullopt;
  for (std::size_t i = fraction.size(); i < kMaxFractionDigits; ++i) *part *= 10;
  return *whole * kMicrosPerUnit + *part;
}

std::optional<Micros> decimalFromJson(const nlohmann::json& value) {
  if (value.is_string()) return parseDecimal(value.get_ref<const std::string&>());
  if (value.is_number_unsigned()) return wholeUnits(value.get<std::uint64_t>());
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
    return wholeUnits(static_cast<std::uint64_t>(value.get<std::int64_t>()));
  }
  if (value.is_number_float()) {
    // The shortest round-trip text of the double is exact iff it is a plain decimal.
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value.get<double>());
    if (result.ec != std::errc()) return std::nullopt;
    return parseDecimal(std::string_view(buffer, static_cast<std::size_t>(result.ptr - buffer)));
  }
  return std::nullopt;  // negative integers, booleans, objects...
}

std::string formatDecimal(Micros value) {
  auto digits = [](Micros number, std::size_t minWidth) {
    std::string text;
    do {
      text.insert(text.begin(), static_cast<char>('0' + static_cast<unsigned>(number % 10)));
      number /= 10;
    } while (number != 0);
    if (text.size() < minWidth) text.insert(0, minWidth - text.size(), '0');
    return text;
  };
  std::string text = digits(value / kMicrosPerUnit, 1);
  const Micros fraction = value % kMicrosPerUnit;
  if (fraction == 0) return text;
  std::string fractionText = digits(fraction, kMaxFractionDigits);
  fractionText.erase(fractionText.find_last_not_of('0') + 1);
  return text + "." + fractionText;
}

}  // namespace bai::cpu
