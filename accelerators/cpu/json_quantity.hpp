// Quantities as the cpu plugin receives them in JSON: its config and the session document.
#pragma once

#include <bai/slots.hpp>

#include <nlohmann/json.hpp>

#include <optional>

namespace bai::cpu {

// Decimal text ("1.5", "4294967296") or a JSON number that converts exactly (2, 1.5);
// nullopt for anything else, including negative and infinite amounts.
std::optional<Quantity> quantityFromJson(const nlohmann::json& value);

}  // namespace bai::cpu
