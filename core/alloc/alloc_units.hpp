// Unit arithmetic shared by the allocation maps (alloc_map.cpp, fraction_alloc_map.cpp);
// internal to core/alloc.
#pragma once

#include <cstdint>
#include <optional>

namespace bai::core::alloc_units {

// Keeps every sum of units (and unit * device-count products of the water fill) in int64.
constexpr std::int64_t kMaxTotalUnits = std::int64_t{1} << 52;

// raw / unit when it divides exactly; 64-bit arithmetic in the common case, since
// 128-bit division is a library call.
inline std::optional<__int128> divideExactly(__int128 raw, __int128 unit) {
  if (raw >= INT64_MIN && raw <= INT64_MAX && unit <= INT64_MAX) {
    const auto r = static_cast<std::int64_t>(raw), u = static_cast<std::int64_t>(unit);
    if (r % u != 0) return std::nullopt;
    return r / u;
  }
  if (raw % unit != 0) return std::nullopt;
  return raw / unit;
}

}  // namespace bai::core::alloc_units
