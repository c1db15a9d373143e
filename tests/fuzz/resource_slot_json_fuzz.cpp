// ResourceSlot::fromJson on any text (what agents report and users send): a parsed slot
// map writes JSON that parses back to the same map and the same text.
#include "fuzz_support.hpp"

#include <bai/slots.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parsed = bai::ResourceSlot::fromJson(bai::fuzz::textOf(data, size));
  if (!parsed) return 0;
  const std::string json = parsed->toJson();
  const auto again = bai::ResourceSlot::fromJson(json);
  bai::fuzz::require(again.ok() && *again == *parsed, "ResourceSlot::fromJson(r.toJson()) == r", json);
  bai::fuzz::require(again->toJson() == json, "toJson is stable", json);
  return 0;
}
