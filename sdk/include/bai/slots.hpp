// Exact resource quantities, slot names and slot maps: the vocabulary that agent,
// manager, plugins and client share. No floating point anywhere.
#pragma once

#include <bai/result.hpp>

#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bai {

// An exact decimal with 6 fractional digits, stored as a scaled 128-bit integer,
// plus +/-Infinity for "unlimited". Sums of 2^63-byte amounts over millions of nodes
// stay far from overflow (|raw| < 2^126 ~ 8.5e37, i.e. ~8.5e31 units).
class Quantity {
 public:
  static constexpr int kFractionDigits = 6;
  static constexpr std::int64_t kScale = 1'000'000;

  constexpr Quantity() = default;
  // Whole units; implicit so that `Quantity q = 4;` reads naturally.
  constexpr Quantity(std::int64_t units) : raw_(static_cast<__int128>(units) * kScale) {}  // NOLINT

  static constexpr Quantity fromRaw(__int128 raw) { return Quantity(RawTag{}, raw); }
  static constexpr Quantity infinity() { return fromRaw(kPosInf); }
  static constexpr Quantity negativeInfinity() { return fromRaw(kNegInf); }

  // Decimal text: "13.5", "-2", ".5", "1e3", "Infinity", "-inf". Rejects NaN, empty
  // input, garbage and more than 6 significant fractional digits (never rounds).
  static Result<Quantity> parse(std::string_view text);

  // numerator / denominator rounded down to 6 fractional digits, e.g. how many shares of
  // 2 GiB a GPU's memory holds. Throws std::domain_error when denominator is 0 and
  // std::overflow_error when the result is out of range.
  static Quantity ratioFloor(__int128 numerator, __int128 denominator);

  // A double taken exactly as its shortest round-trip text ("0.1" stays 0.1): refused when
  // not finite, at or beyond 2^53 (where doubles skip integers), or needing more than 6
  // fractional digits. For JSON numbers, which reach us as doubles.
  static Result<Quantity> fromDouble(double value);

  // Shortest exact text: "0.5", "13.5", "4", "Infinity", "-Infinity".
  std::string toString() const;
  // The nearest double (±infinity for the infinities): for ranking and display only,
  // never for arithmetic that must be exact.
  double toDouble() const;

  constexpr __int128 raw() const { return raw_; }
  constexpr bool isInfinite() const { return raw_ == kPosInf || raw_ == kNegInf; }
  constexpr bool isFinite() const { return !isInfinite(); }
  constexpr bool isZero() const { return raw_ == 0; }
  constexpr bool isNegative() const { return raw_ < 0; }
  constexpr bool isInteger() const { return isFinite() && raw_ % kScale == 0; }
  // The integer part, truncated towards zero. Precondition: finite.
  __int128 wholeUnits() const;
  // floor(amount * this) as a whole number, e.g. the bytes 0.5 shares of 2 GiB stand for.
  // Throws std::domain_error when infinite, std::overflow_error past 128 bits.
  __int128 timesFloor(__int128 amount) const;

  // Arithmetic on finite values is exact. Infinity absorbs finite values;
  // Infinity - Infinity has no meaning and throws std::domain_error (a programming error),
  // as does leaving the representable range (std::overflow_error).
  friend Quantity operator+(Quantity a, Quantity b);
  friend Quantity operator-(Quantity a, Quantity b);
  Quantity operator-() const { return fromRaw(-raw_); }
  Quantity& operator+=(Quantity other) { return *this = *this + other; }
  Quantity& operator-=(Quantity other) { return *this = *this - other; }

  friend constexpr bool operator==(Quantity, Quantity) = default;
  friend constexpr std::strong_ordering operator<=>(Quantity a, Quantity b) {
    return a.raw_ < b.raw_ ? std::strong_ordering::less
         : a.raw_ > b.raw_ ? std::strong_ordering::greater
                           : std::strong_ordering::equal;
  }

 private:
  struct RawTag {};
  constexpr Quantity(RawTag, __int128 raw) : raw_(raw) {}
  static constexpr __int128 kPosInf = (static_cast<__int128>(1) << 126);
  static constexpr __int128 kNegInf = -kPosInf;

  __int128 raw_ = 0;
};

// A byte count written the way people write memory sizes: "4g", "4G", "4GiB", "4gb"
// (all 4 * 2^30), "1.5g", "512m", "100", "100b". Binary units k m g t p e.
class BinarySize {
 public:
  constexpr BinarySize() = default;
  constexpr explicit BinarySize(std::uint64_t bytes) : bytes_(bytes) {}

  // Errors: empty, negative, NaN, unknown suffix, a fraction of a byte ("1.5", "0.1k"),
  // more than 2^64 - 1 bytes.
  static Result<BinarySize> parse(std::string_view text);
  // A non-negative integral Quantity of bytes; errors as parse().
  static Result<BinarySize> fromQuantity(Quantity bytes);

  constexpr std::uint64_t bytes() const { return bytes_; }
  Quantity toQuantity() const;
  // The shortest text that parses back to the same value: "4g", "1.5g", "1000".
  std::string toString() const;

  friend constexpr auto operator<=>(BinarySize, BinarySize) = default;

 private:
  std::uint64_t bytes_ = 0;
};

// `device[.major[:minor]]`: "cpu", "mem", "cuda.device", "cuda.shares",
// "cuda.device:1g.10gb-mig". Lower case; device starts with a letter; at most 64 bytes.
class SlotName {
 public:
  static Result<SlotName> parse(std::string_view text);
  // For names fixed in code: throws std::invalid_argument when invalid.
  static SlotName of(std::string_view text);

  const std::string& str() const { return name_; }
  // "cuda" for "cuda.device:1g.10gb-mig".
  std::string_view device() const;
  // "device" for "cuda.device:1g.10gb-mig"; empty when absent.
  std::string_view major() const;
  // "1g.10gb-mig" for "cuda.device:1g.10gb-mig"; empty when absent.
  std::string_view minor() const;

  friend bool operator==(const SlotName&, const SlotName&) = default;
  friend auto operator<=>(const SlotName&, const SlotName&) = default;

 private:
  explicit SlotName(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

enum class SlotType {
  Count,     // a decimal amount: cores, whole devices
  Bytes,     // an integral byte count: memory
  Unique,    // requested as exactly 1: a MIG slice
  Unified,   // given to every session, never allocated
  Fraction,  // a decimal amount of devices that sessions share (cuda.shares): packed by placement
};

const char* slotTypeName(SlotType type);
Result<SlotType> parseSlotType(std::string_view text);

// The slot types a component knows, e.g. what the agents of a cluster report.
class SlotTypeTable {
 public:
  SlotTypeTable() = default;
  SlotTypeTable(std::initializer_list<std::pair<SlotName, SlotType>> entries);

  // Adding a known slot with another type is refused (Conflict).
  Result<void> add(const SlotName& slot, SlotType type);
  const SlotType* find(std::string_view slot) const;
  std::size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<SlotName, SlotType>> entries_;  // sorted by name
};

// A map slot -> quantity where a missing key means 0. Operators build new values and
// never touch their operands; comparisons are per key over the union of keys, so
// `a <= b` holds iff no key has a[k] > b[k] and two slots may be unordered.
class ResourceSlot {
 public:
  using Entry = std::pair<SlotName, Quantity>;

  ResourceSlot() = default;
  ResourceSlot(std::initializer_list<Entry> entries);

  Quantity get(const SlotName& slot) const;
  Quantity get(std::string_view slot) const;
  void set(const SlotName& slot, Quantity amount);
  bool contains(std::string_view slot) const;

  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }
  // True when every value is zero (or there are none).
  bool isZero() const;

  friend ResourceSlot operator+(const ResourceSlot& a, const ResourceSlot& b);
  friend ResourceSlot operator-(const ResourceSlot& a, const ResourceSlot& b);
  friend bool operator==(const ResourceSlot& a, const ResourceSlot& b);
  friend std::partial_ordering operator<=>(const ResourceSlot& a, const ResourceSlot& b);

  // {"cpu":"2","mem":"4294967296"}: exact values as strings, keys sorted.
  std::string toJson() const;
  // Accepts string values and JSON numbers that convert exactly; errors name the key.
  static Result<ResourceSlot> fromJson(std::string_view json);

  // What a user typed, e.g. {{"cpu","2"},{"mem","4g"}}: every slot must be in `types`,
  // bytes slots take binary sizes, unique slots take 0 or 1, nothing may be negative
  // or repeated. Errors name the slot and the value.
  static Result<ResourceSlot> parseUserInput(
      const std::vector<std::pair<std::string, std::string>>& input, const SlotTypeTable& types);

 private:
  template <class Op>
  static ResourceSlot combine(const ResourceSlot& a, const ResourceSlot& b, Op op);

  std::vector<Entry> entries_;  // sorted by slot name, unique keys
};

}  // namespace bai

template <>
struct std::hash<bai::SlotName> {
  std::size_t operator()(const bai::SlotName& s) const noexcept {
    return std::hash<std::string>{}(s.str());
  }
};
