// parseRfc3339Utc on any text (the X-BAI-Date header): it accepts exactly
// YYYY-MM-DDTHH:MM:SSZ, so an accepted date prints back as the very same text.
#include "fuzz_support.hpp"

#include <bai/request_signing.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = bai::fuzz::textOf(data, size);
  const auto parsed = bai::auth::parseRfc3339Utc(text);
  if (!parsed) return 0;
  const std::string printed = bai::auth::formatRfc3339Utc(*parsed);
  bai::fuzz::require(printed == text, "formatRfc3339Utc(parseRfc3339Utc(s)) == s", printed);
  return 0;
}
