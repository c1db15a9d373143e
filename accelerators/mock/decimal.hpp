// Exact decimals and byte sizes for the mock plugin. The ABI carries every quantity as
// decimal text, and share capacities must come out the same on every machine, so
// nothing here uses floating point.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bai::mock {

// A non-negative decimal with at most 6 fractional digits, kept as millionths.
class Decimal {
 public:
  static constexpr int kFractionDigits = 6;
  static constexpr __int128 kScale = 1'000'000;

  constexpr Decimal() = default;
  static constexpr Decimal fromRaw(__int128 raw) { return Decimal(raw); }
  static constexpr Decimal whole(std::int64_t units) { return Decimal(static_cast<__int128>(units) * kScale); }
  // numerator / denominator, rounded down to 6 fractional digits. Both non-negative, denominator > 0.
  static Decimal floorRatio(__int128 numerator, __int128 denominator);
  // "12", "0.01", "1.250000": digits with an optional fraction; no sign, exponent or
  // spaces; at most 6 significant fractional digits, since rounding would change the amount.
  static std::optional<Decimal> parse(std::string_view text);

  // The shortest exact text: "2", "1.5", "0.000001".
  std::string toString() const;

  constexpr __int128 raw() const { return raw_; }
  constexpr bool isZero() const { return raw_ == 0; }
  // floor(amount * this), e.g. the bytes a share of a device stands for.
  constexpr __int128 timesFloor(__int128 amount) const { return amount * raw_ / kScale; }

  friend constexpr bool operator==(Decimal a, Decimal b) { return a.raw_ == b.raw_; }
  friend constexpr bool operator<(Decimal a, Decimal b) { return a.raw_ < b.raw_; }
  friend constexpr bool operator<=(Decimal a, Decimal b) { return a.raw_ <= b.raw_; }
  friend constexpr bool operator>(Decimal a, Decimal b) { return a.raw_ > b.raw_; }
  friend constexpr Decimal operator+(Decimal a, Decimal b) { return Decimal(a.raw_ + b.raw_); }
  friend constexpr Decimal operator-(Decimal a, Decimal b) { return Decimal(a.raw_ - b.raw_); }

 private:
  constexpr explicit Decimal(__int128 raw) : raw_(raw) {}
  __int128 raw_ = 0;
};

// Decimal text of a non-negative 128-bit integer.
std::string toDecimalText(unsigned __int128 value);

// A byte count as people write it: "40g", "40G", "40GiB", "40gb", "1.5g", "512", "512b".
// Binary units k m g t p e, case-insensitive. A fraction is allowed only when the result
// is a whole number of bytes ("1.5g" yes, "1.5" or "0.1k" no). Nullopt for anything
// else or for more than INT64_MAX bytes.
std::optional<std::uint64_t> parseBinarySize(std::string_view text);

}  // namespace bai::mock
