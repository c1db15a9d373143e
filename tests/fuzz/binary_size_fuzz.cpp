// BinarySize::parse on any text: a parsed size prints as text that parses back to it,
// and converts to a Quantity of bytes and back unchanged.
#include "fuzz_support.hpp"

#include <bai/slots.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parsed = bai::BinarySize::parse(bai::fuzz::textOf(data, size));
  if (!parsed) return 0;
  const std::string text = parsed->toString();
  const auto again = bai::BinarySize::parse(text);
  bai::fuzz::require(again.ok() && *again == *parsed, "BinarySize::parse(s.toString()) == s", text);
  const auto viaQuantity = bai::BinarySize::fromQuantity(parsed->toQuantity());
  bai::fuzz::require(viaQuantity.ok() && *viaQuantity == *parsed, "BinarySize::fromQuantity(s.toQuantity()) == s", text);
  return 0;
}
