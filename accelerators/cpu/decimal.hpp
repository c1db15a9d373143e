// Exact non-negative decimals as the ABI carries them ("2", "1.5", "4294967296"), kept
// as integers of millionths so that overcommitted capacities are computed without floats.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bai::cpu {

using Micros = unsigned __int128;  // a decimal times kMicrosPerUnit
inline constexpr Micros kMicrosPerUnit = 1'000'000;

// Plain digits with at most 6 fractional digits; no sign, exponent or spaces.
std::optional<Micros> parseDecimal(std::string_view text);

// A quantity given as a decimal string or as a JSON number that converts exactly.
std::optional<Micros> decimalFromJson(const nlohmann::json& value);

// The shortest text for `value`: "2", "1.5", "0.000001".
std::string formatDecimal(Micros value);

constexpr Micros wholeUnits(std::uint64_t units) { return Micros{units} * kMicrosPerUnit; }
constexpr bool isWhole(Micros value) { return value % kMicrosPerUnit == 0; }

}  // namespace bai::cpu
