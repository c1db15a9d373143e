#include <bai/slots.hpp>

#include "int128_text.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace bai {
namespace {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != b[i]) return false;
  }
  return true;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// The largest finite magnitude we accept from text: keeps every parsed value far from
// the infinity sentinels so that a few sums of parsed values cannot reach them.
constexpr int kMaxRawDigits = 37;

// Rounds towards negative infinity, where `/` truncates towards zero.
__int128 floorDivide(__int128 numerator, __int128 denominator) {
  __int128 quotient = numerator / denominator;
  if (numerator % denominator != 0 && (numerator < 0) != (denominator < 0)) --quotient;
  return quotient;
}

__int128 checkedProduct(__int128 a, __int128 b, const char* operation) {
  __int128 product;
  if (__builtin_mul_overflow(a, b, &product)) throw std::overflow_error(std::string(operation) + " out of range");
  return product;
}

}  // namespace

Quantity Quantity::ratioFloor(__int128 numerator, __int128 denominator) {
  if (denominator == 0) throw std::domain_error("ratioFloor() by zero");
  const __int128 raw = floorDivide(checkedProduct(numerator, kScale, "ratioFloor()"), denominator);
  if (raw >= kPosInf || raw <= kNegInf) throw std::overflow_error("ratioFloor() out of range");
  return fromRaw(raw);
}

Result<Quantity> Quantity::parse(std::string_view text) {
  const std::string shown(text);
  if (text.empty()) return fail(ErrorCode::InvalidArgument, "empty quantity");

  std::string_view rest = text;
  bool negative = false;
  if (rest.front() == '+' || rest.front() == '-') {
    negative = rest.front() == '-';
    rest.remove_prefix(1);
  }
  if (equalsIgnoreCase(rest, "inf") || equalsIgnoreCase(rest, "infinity")) {
    return negative ? negativeInfinity() : infinity();
  }
  if (equalsIgnoreCase(rest, "nan")) {
    return fail(ErrorCode::InvalidArgument, "'" + shown + "' is not a number");
  }

  std::string digits;  // significant digits, integer and fraction concatenated
  int exponent = 0;    // value = digits * 10^exponent
  std::size_t i = 0;
  bool sawDigit = false;
  while (i < rest.size() && isDigit(rest[i])) {
    digits += rest[i++];
    sawDigit = true;
  }
  if (i < rest.size() && rest[i] == '.') {
    ++i;
    bool sawFraction = false;
    while (i < rest.size() && isDigit(rest[i])) {
      digits += rest[i++];
      --exponent;
      sawFraction = true;
    }
    if (!sawFraction) return fail(ErrorCode::InvalidArgument, "'" + shown + "' is not a decimal number");
    sawDigit = true;
  }
  if (!sawDigit) return fail(ErrorCode::InvalidArgument, "'" + shown + "' is not a decimal number");
  if (i < rest.size() && (rest[i] == 'e' || rest[i] == 'E')) {
    ++i;
    bool negativeExponent = false;
    if (i < rest.size() && (rest[i] == '+' || rest[i] == '-')) negativeExponent = rest[i++] == '-';
    int value = 0;
    std::size_t start = i;
    while (i < rest.size() && isDigit(rest[i]) && i - start < 4) value = value * 10 + (rest[i++] - '0');
    if (i == start) return fail(ErrorCode::InvalidArgument, "'" + shown + "' has an empty exponent");
    exponent += negativeExponent ? -value : value;
  }
  if (i != rest.size()) return fail(ErrorCode::InvalidArgument, "'" + shown + "' is not a decimal number");

  // Scale to raw units: raw = digits * 10^(exponent + 6).
  int shift = exponent + kFractionDigits;
  std::size_t firstNonZero = digits.find_first_not_of('0');
  if (firstNonZero == std::string::npos) return Quantity();
  digits.erase(0, firstNonZero);
  if (shift < 0) {
    std::size_t drop = static_cast<std::size_t>(-shift);
    if (drop > digits.size() || digits.find_first_not_of('0', digits.size() - drop) != std::string::npos) {
      return fail(ErrorCode::InvalidArgument,
                  "'" + shown + "' has more than 6 fractional digits; bai quantities are exact");
    }
    digits.resize(digits.size() - drop);
  } else {
    if (digits.size() + static_cast<std::size_t>(shift) > kMaxRawDigits) {
      return fail(ErrorCode::OutOfRange, "'" + shown + "' is too large");
    }
    digits.append(static_cast<std::size_t>(shift), '0');
  }
  if (digits.size() > kMaxRawDigits) return fail(ErrorCode::OutOfRange, "'" + shown + "' is too large");
  __int128 raw = 0;
  for (char c : digits) raw = raw * 10 + (c - '0');
  return fromRaw(negative ? -raw : raw);
}

Result<Quantity> Quantity::fromDouble(double value) {
  if (!std::isfinite(value)) return fail(ErrorCode::InvalidArgument, "not a finite number");
  if (std::fabs(value) >= 9007199254740992.0) {  // 2^53
    return fail(ErrorCode::InvalidArgument, "number too large to be exact; send it as a string");
  }
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  if (ec != std::errc()) return fail(ErrorCode::Internal, "cannot format number");
  return parse(std::string_view(buffer, static_cast<std::size_t>(end - buffer)));
}

std::string Quantity::toString() const {
  if (raw_ == kPosInf) return "Infinity";
  if (raw_ == kNegInf) return "-Infinity";
  unsigned __int128 abs = detail::magnitude(raw_);
  std::string text = raw_ < 0 ? "-" : "";
  text += detail::unsignedToString(abs / kScale);
  auto fraction = static_cast<std::int64_t>(abs % kScale);
  if (fraction != 0) {
    std::string digits = std::to_string(fraction);
    digits.insert(0, kFractionDigits - digits.size(), '0');
    digits.erase(digits.find_last_not_of('0') + 1);
    text += '.';
    text += digits;
  }
  return text;
}

__int128 Quantity::wholeUnits() const {
  if (isInfinite()) throw std::domain_error("wholeUnits() of an infinite quantity");
  return raw_ / kScale;
}

__int128 Quantity::timesFloor(__int128 amount) const {
  if (isInfinite()) throw std::domain_error("timesFloor() of an infinite quantity");
  return floorDivide(checkedProduct(amount, raw_, "timesFloor()"), kScale);
}

Quantity operator+(Quantity a, Quantity b) {
  if (a.isInfinite() || b.isInfinite()) {
    if (a.isInfinite() && b.isInfinite() && a.raw_ != b.raw_) {
      throw std::domain_error("Infinity + -Infinity is undefined");
    }
    return a.isInfinite() ? a : b;
  }
  __int128 sum;
  if (__builtin_add_overflow(a.raw_, b.raw_, &sum) || sum >= Quantity::kPosInf || sum <= Quantity::kNegInf) {
    throw std::overflow_error("quantity sum out of range");
  }
  return Quantity::fromRaw(sum);
}

Quantity operator-(Quantity a, Quantity b) { return a + (-b); }

double Quantity::toDouble() const {
  if (raw_ == kPosInf) return std::numeric_limits<double>::infinity();
  if (raw_ == kNegInf) return -std::numeric_limits<double>::infinity();
  // Integer and fractional parts apart, so large byte counts keep their precision.
  return static_cast<double>(raw_ / kScale) + static_cast<double>(raw_ % kScale) / static_cast<double>(kScale);
}

}  // namespace bai
