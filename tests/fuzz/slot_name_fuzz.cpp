// SlotName::parse and parseSlotType on any text: a parsed name is its parts put back
// together, and parses again to itself; a slot type's name parses back to the type.
#include "fuzz_support.hpp"

#include <bai/slots.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = bai::fuzz::textOf(data, size);
  if (const auto name = bai::SlotName::parse(text)) {
    bai::fuzz::require(name->str() == text, "a parsed slot name keeps its text", text);
    std::string joined(name->device());
    if (!name->major().empty()) joined += "." + std::string(name->major());
    if (!name->minor().empty()) joined += ":" + std::string(name->minor());
    bai::fuzz::require(joined == text, "device.major:minor spells the slot name", joined);
    const auto again = bai::SlotName::parse(name->str());
    bai::fuzz::require(again.ok() && *again == *name, "SlotName::parse(n.str()) == n", text);
  }
  if (const auto type = bai::parseSlotType(text)) {
    const auto again = bai::parseSlotType(bai::slotTypeName(*type));
    bai::fuzz::require(again.ok() && *again == *type, "parseSlotType(slotTypeName(t)) == t", text);
  }
  return 0;
}
