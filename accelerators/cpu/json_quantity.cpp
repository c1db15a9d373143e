#include "json_quantity.hpp"

#include <charconv>
#include <cmath>
#include <string>

namespace bai::cpu {
namespace {

// Beyond 2^53 doubles skip integers, so their shortest text is no longer their value.
constexpr double kLargestExactDouble = 9007199254740992.0;

// The decimal text a JSON string or number stands for; nullopt for other types.
std::optional<std::string> decimalText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return value.dump();  // signed or unsigned, always exact
  if (!value.is_number_float() || std::fabs(value.get<double>()) >= kLargestExactDouble) return std::nullopt;
  // The shortest text that round-trips: 0.1 stays "0.1"; 1e-7 needs 7 fractional digits and fails.
  char buffer[64];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value.get<double>());
  if (error != std::errc()) return std::nullopt;
  return std::string(buffer, end);
}

}  // namespace

std::optional<Quantity> quantityFromJson(const nlohmann::json& value) {
  const std::optional<std::string> text = decimalText(value);
  if (!text) return std::nullopt;
  const Result<Quantity> quantity = Quantity::parse(*text);
  if (!quantity || quantity->isNegative() || quantity->isInfinite()) return std::nullopt;
  return *quantity;
}

}  // namespace bai::cpu
