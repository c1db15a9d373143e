#include "decimal.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

namespace bai::mock {
namespace {

// Beyond any real amount (10^19 > INT64_MAX); keeps every product below 2^127.
constexpr std::size_t kMaxIntegerDigits = 19;
constexpr std::size_t kMaxFractionDigits = 18;

struct DigitParts {
  std::string_view integer;
  std::string_view fraction;  // without trailing zeros, which change nothing
};

bool allDigits(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Splits "12.50" into {"12", "5"}; nullopt unless it is plain digits with an optional fraction.
std::optional<DigitParts> splitDigits(std::string_view text) {
  std::size_t dot = text.find('.');
  std::string_view integer = text.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (integer.empty() || !allDigits(integer) || !allDigits(fraction)) return std::nullopt;
  if (dot != std::string_view::npos && fraction.empty()) return std::nullopt;  // "12." is a typo
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  while (integer.size() > 1 && integer.front() == '0') integer.remove_prefix(1);
  if (integer.size() > kMaxIntegerDigits || fraction.size() > kMaxFractionDigits) return std::nullopt;
  return DigitParts{integer, fraction};
}

unsigned __int128 digitsValue(std::string_view digits) {
  unsigned __int128 value = 0;
  for (char c : digits) value = value * 10 + static_cast<unsigned>(c - '0');
  return value;
}

unsigned __int128 powerOfTen(std::size_t exponent) {
  unsigned __int128 value = 1;
  for (std::size_t i = 0; i < exponent; ++i) value *= 10;
  return value;
}

// The power of 1024 a unit letter stands for; nullopt when it is no unit.
std::optional<int> unitExponent(char letter) {
  static constexpr std::string_view kUnits = "kmgtpe";
  std::size_t at = kUnits.find(static_cast<char>(std::tolower(static_cast<unsigned char>(letter))));
  if (at == std::string_view::npos) return std::nullopt;
  return static_cast<int>(at) + 1;
}

// Strips the unit suffix of a binary size and returns its power of 1024:
// "" and "b" are bytes; "g", "gb" and "gib" are 1024^3.
std::optional<int> takeUnitSuffix(std::string_view& text) {
  if (!text.empty() && (text.back() == 'b' || text.back() == 'B')) {
    text.remove_suffix(1);
    if (!text.empty() && (text.back() == 'i' || text.back() == 'I')) {
      text.remove_suffix(1);
      if (text.empty() || !unitExponent(text.back())) return std::nullopt;  // "ib" needs a unit
    }
  }
  if (text.empty()) return std::nullopt;
  std::optional<int> exponent = unitExponent(text.back());
  if (!exponent) return 0;
  text.remove_suffix(1);
  return exponent;
}

}  // namespace

Decimal Decimal::floorRatio(__int128 numerator, __int128 denominator) {
  return Decimal(numerator * kScale / denominator);
}

std::optional<Decimal> Decimal::parse(std::string_view text) {
  std::optional<DigitParts> parts = splitDigits(text);
  if (!parts || parts->fraction.size() > static_cast<std::size_t>(kFractionDigits)) return std::nullopt;
  unsigned __int128 fraction = digitsValue(parts->fraction) * powerOfTen(kFractionDigits - parts->fraction.size());
  return Decimal(static_cast<__int128>(digitsValue(parts->integer) * kScale + fraction));
}

std::string Decimal::toString() const {
  std::string text = toDecimalText(static_cast<unsigned __int128>(raw_ / kScale));
  std::string fraction = toDecimalText(static_cast<unsigned __int128>(raw_ % kScale));
  if (fraction == "0") return text;
  fraction.insert(0, kFractionDigits - fraction.size(), '0');
  while (fraction.back() == '0') fraction.pop_back();
  return text + "." + fraction;
}

std::string toDecimalText(unsigned __int128 value) {
  std::string text;
  do {
    text.push_back(static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  } while (value != 0);
  std::reverse(text.begin(), text.end());
  return text;
}

std::optional<std::uint64_t> parseBinarySize(std::string_view text) {
  std::optional<int> exponent = takeUnitSuffix(text);
  if (!exponent) return std::nullopt;
  std::optional<DigitParts> parts = splitDigits(text);
  if (!parts) return std::nullopt;
  unsigned __int128 denominator = powerOfTen(parts->fraction.size());
  unsigned __int128 mantissa = digitsValue(parts->integer) * denominator + digitsValue(parts->fraction);
  int shift = 10 * *exponent;
  if (mantissa > (std::numeric_limits<unsigned __int128>::max() >> shift)) return std::nullopt;
  unsigned __int128 scaled = mantissa << shift;
  if (scaled % denominator != 0) return std::nullopt;  // not a whole number of bytes
  unsigned __int128 bytes = scaled / denominator;
  if (bytes > static_cast<unsigned __int128>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  return static_cast<std::uint64_t>(bytes);
}

}  // namespace bai::mock
