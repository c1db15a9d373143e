#include "json_quantity.hpp"

#include <string>

namespace bai::cpu {

std::optional<Quantity> quantityFromJson(const nlohmann::json& value) {
  Result<Quantity> quantity = fail(ErrorCode::InvalidArgument, "not a number");
  if (value.is_string()) quantity = Quantity::parse(value.get<std::string>());
  else if (value.is_number_integer()) quantity = Quantity::parse(value.dump());  // signed or unsigned, always exact
  else if (value.is_number_float()) quantity = Quantity::fromDouble(value.get<double>());
  if (!quantity || quantity->isNegative() || quantity->isInfinite()) return std::nullopt;
  return *quantity;
}

}  // namespace bai::cpu
