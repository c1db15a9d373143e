// ResourceSlot::parseUserInput on what a user types (`-r cpu=2 -r mem=4g`), one
// `slot=amount` a line, against a table of every slot type: what it accepts is a
// non-negative, finite map that survives its JSON round trip.
#include "fuzz_support.hpp"

#include <bai/slots.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bai::SlotTypeTable types{
      {bai::SlotName::of("cpu"), bai::SlotType::Count},
      {bai::SlotName::of("mem"), bai::SlotType::Bytes},
      {bai::SlotName::of("cuda.device"), bai::SlotType::Count},
      {bai::SlotName::of("cuda.shares"), bai::SlotType::Fraction},
      {bai::SlotName::of("cuda.device:1g.10gb-mig"), bai::SlotType::Unique},
      {bai::SlotName::of("acme.npu"), bai::SlotType::Fraction},
      {bai::SlotName::of("acme.driver"), bai::SlotType::Unified},
  };
  std::vector<std::pair<std::string, std::string>> input;
  for (std::string_view line : bai::fuzz::splitLines(bai::fuzz::textOf(data, size))) {
    const std::size_t equals = line.find('=');
    input.emplace_back(line.substr(0, equals), equals == std::string_view::npos ? "" : line.substr(equals + 1));
  }
  const auto parsed = bai::ResourceSlot::parseUserInput(input, types);
  if (!parsed) return 0;
  for (const auto& [slot, amount] : *parsed) {
    bai::fuzz::require(amount.isFinite() && !amount.isNegative(), "user amounts are finite and not negative",
                       slot.str());
  }
  const std::string json = parsed->toJson();
  const auto again = bai::ResourceSlot::fromJson(json);
  bai::fuzz::require(again.ok() && *again == *parsed, "ResourceSlot::fromJson(r.toJson()) == r", json);
  return 0;
}
