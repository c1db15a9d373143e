#include <bai/slots.hpp>

#include "int128_text.hpp"

#include <array>
#include <string>

namespace bai {
namespace {

using u128 = unsigned __int128;

constexpr std::array<char, 7> kUnitLetters = {'\0', 'k', 'm', 'g', 't', 'p', 'e'};
constexpr u128 kMaxBytes = static_cast<u128>(UINT64_MAX);

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Index into kUnitLetters for a suffix like "", "b", "k", "kb", "KiB"; -1 if unknown.
int unitIndex(std::string_view suffix) {
  std::string s;
  for (char c : suffix) s += lower(c);
  if (s.empty() || s == "b") return 0;
  for (int i = 1; i < static_cast<int>(kUnitLetters.size()); ++i) {
    const char letter = kUnitLetters[static_cast<std::size_t>(i)];
    if (s == std::string(1, letter) || s == std::string{letter, 'b'} || s == std::string{letter, 'i', 'b'}) {
      return i;
    }
  }
  return -1;
}

u128 pow5(int n) {
  u128 v = 1;
  for (int i = 0; i < n; ++i) v *= 5;
  return v;
}

// Exact decimal text of bytes / 2^(10*unit), or "" when it needs more than 20 fraction digits.
std::string exactUnitText(std::uint64_t bytes, int unit) {
  const int shift = 10 * unit;
  u128 whole = static_cast<u128>(bytes) >> shift;
  u128 rest = static_cast<u128>(bytes) - (whole << shift);
  std::string text = detail::unsignedToString(whole);
  if (rest != 0) {
    text += '.';
    for (int digit = 0; rest != 0; ++digit) {
      if (digit == 20) return "";
      rest *= 10;
      text += static_cast<char>('0' + static_cast<int>(rest >> shift));
      rest &= (static_cast<u128>(1) << shift) - 1;
    }
  }
  if (unit > 0) text += kUnitLetters[static_cast<std::size_t>(unit)];
  return text;
}

}  // namespace

Result<BinarySize> BinarySize::parse(std::string_view text) {
  const std::string shown(text);
  auto invalid = [&](const std::string& why) {
    return fail(ErrorCode::InvalidArgument, "invalid size '" + shown + "': " + why);
  };
  if (text.empty()) return fail(ErrorCode::InvalidArgument, "invalid size '': empty");
  if (text.front() == '-') return invalid("negative");
  std::string_view rest = text;
  if (rest.front() == '+') rest.remove_prefix(1);

  std::size_t i = 0;
  std::string intDigits, fracDigits;
  while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') intDigits += rest[i++];
  bool hasPoint = i < rest.size() && rest[i] == '.';
  if (hasPoint) {
    ++i;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') fracDigits += rest[i++];
  }
  if (intDigits.empty() && fracDigits.empty()) {
    std::string lowered;
    for (char c : rest) lowered += lower(c);
    if (lowered == "nan") return invalid("not a number");
    return invalid("expected a number like 4g, 1.5g, 512m or 1048576");
  }
  if (hasPoint && fracDigits.empty()) return invalid("expected digits after '.'");
  const int unit = unitIndex(rest.substr(i));
  if (unit < 0) return invalid("unknown unit '" + std::string(rest.substr(i)) + "' (use k, m, g, t, p or e)");

  intDigits.erase(0, std::min(intDigits.find_first_not_of('0'), intDigits.size()));
  while (!fracDigits.empty() && fracDigits.back() == '0') fracDigits.pop_back();
  if (intDigits.size() > 20 || fracDigits.size() > 30) return fail(ErrorCode::OutOfRange, "invalid size '" + shown + "': too large");

  // bytes = mantissa * 2^(10*unit) / 10^f with mantissa = int.frac without the point;
  // since 10^f = 2^f * 5^f, the division is exact iff 5^f | mantissa and the 2s cancel.
  u128 whole = 0;
  for (char c : intDigits) whole = whole * 10 + static_cast<u128>(c - '0');
  if (whole > kMaxBytes) return fail(ErrorCode::OutOfRange, "invalid size '" + shown + "': more than 2^64-1 bytes");
  const int f = static_cast<int>(fracDigits.size());
  if (f > 0) {
    // Multiply the fraction out step by step: value = whole + frac / 10^f.
    u128 frac = 0;
    for (char c : fracDigits) frac = frac * 10 + static_cast<u128>(c - '0');
    if (frac % pow5(f) != 0) return invalid("not a whole number of bytes");
    u128 fracOver5 = frac / pow5(f);  // frac / 10^f = fracOver5 / 2^f
    const int shift = 10 * unit;
    if (shift < f) return invalid("not a whole number of bytes");
    u128 fracBytes = fracOver5 << (shift - f);
    if (shift >= 64 && whole != 0) return fail(ErrorCode::OutOfRange, "invalid size '" + shown + "': more than 2^64-1 bytes");
    u128 wholeBytes = whole << shift;
    if ((wholeBytes >> shift) != whole || wholeBytes + fracBytes > kMaxBytes) {
      return fail(ErrorCode::OutOfRange, "invalid size '" + shown + "': more than 2^64-1 bytes");
    }
    return BinarySize(static_cast<std::uint64_t>(wholeBytes + fracBytes));
  }
  const int shift = 10 * unit;
  if (whole != 0 && (shift >= 64 || (whole << shift) >> shift != whole || (whole << shift) > kMaxBytes)) {
    return fail(ErrorCode::OutOfRange, "invalid size '" + shown + "': more than 2^64-1 bytes");
  }
  return BinarySize(static_cast<std::uint64_t>(whole << shift));
}

Result<BinarySize> BinarySize::fromQuantity(Quantity bytes) {
  if (bytes.isNegative()) return fail(ErrorCode::InvalidArgument, "invalid size '" + bytes.toString() + "': negative");
  if (bytes.isInfinite()) return fail(ErrorCode::OutOfRange, "invalid size 'Infinity': not a byte count");
  if (!bytes.isInteger()) return fail(ErrorCode::InvalidArgument, "invalid size '" + bytes.toString() + "': a fraction of a byte");
  __int128 whole = bytes.wholeUnits();
  if (whole > static_cast<__int128>(kMaxBytes)) return fail(ErrorCode::OutOfRange, "invalid size '" + bytes.toString() + "': more than 2^64-1 bytes");
  return BinarySize(static_cast<std::uint64_t>(whole));
}

Quantity BinarySize::toQuantity() const {
  return Quantity::fromRaw(static_cast<__int128>(bytes_) * Quantity::kScale);
}

std::string BinarySize::toString() const {
  std::string best = exactUnitText(bytes_, 0);
  for (int unit = 1; unit < static_cast<int>(kUnitLetters.size()); ++unit) {
    std::string candidate = exactUnitText(bytes_, unit);
    // Shortest wins; on a tie a whole number ("512m", "1536") beats a fraction ("0.5g").
    const bool shorter = candidate.size() < best.size();
    const bool tieButWhole = candidate.size() == best.size() && candidate.find('.') == std::string::npos;
    if (!candidate.empty() && (shorter || tieButWhole)) best = std::move(candidate);
  }
  return best;
}

}  // namespace bai
