// Quantity::parse on any text, and Quantity::fromDouble on any 8 bytes taken as a
// double (how JSON numbers arrive): a parsed amount prints as text that parses back to it.
#include "fuzz_support.hpp"

#include <bai/slots.hpp>

#include <cstring>

namespace {

void requireRoundTrip(bai::Quantity amount) {
  const std::string text = amount.toString();
  const auto again = bai::Quantity::parse(text);
  bai::fuzz::require(again.ok() && *again == amount, "Quantity::parse(q.toString()) == q", text);
  (void)amount.toDouble();
  if (amount.isFinite()) (void)amount.wholeUnits();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = bai::fuzz::textOf(data, size);
  if (auto amount = bai::Quantity::parse(text)) requireRoundTrip(*amount);
  if (size == sizeof(double)) {
    double value = 0;
    std::memcpy(&value, data, sizeof value);
    if (auto amount = bai::Quantity::fromDouble(value)) requireRoundTrip(*amount);
  }
  return 0;
}
