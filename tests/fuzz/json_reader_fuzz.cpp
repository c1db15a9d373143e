// The C plugins' JSON reader (<bai/json.h>) on any text: it never reads past the input
// (ASan sees the exact length, no NUL after it), every value of an accepted document can
// be walked and read, and what it accepts is JSON by nlohmann's grammar too.
#include "fuzz_support.hpp"

#include <bai/json.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <memory>

namespace {

void walk(const bai_json_value& value, int depth) {
  bai::fuzz::require(depth <= BAI_JSON_MAX_DEPTH + 1, "nesting stays within BAI_JSON_MAX_DEPTH");
  switch (value.type) {
    case BAI_JSON_STRING: {
      std::size_t needed = 0;
      (void)bai_json_read_string(&value, nullptr, 0, &needed);
      std::string buffer(needed, '\0');
      (void)bai_json_read_string(&value, buffer.data(), buffer.size(), nullptr);
      break;
    }
    case BAI_JSON_NUMBER: {
      std::int64_t number = 0;
      (void)bai_json_read_int(&value, &number);
      break;
    }
    case BAI_JSON_BOOL: {
      bool flag = false;
      (void)bai_json_read_bool(&value, &flag);
      break;
    }
    case BAI_JSON_ARRAY:
    case BAI_JSON_OBJECT: {
      bai_json_iter it;
      bai::fuzz::require(bai_json_iterate(&value, &it) == BAI_JSON_OK, "a container can be iterated");
      bai_json_value key, member;
      while (bai_json_next(&it, &key, &member)) {
        if (value.type == BAI_JSON_OBJECT) {
          walk(key, depth + 1);
          bai_json_value found;
          (void)bai_json_get(&value, "id", &found);
        }
        walk(member, depth + 1);
      }
      break;
    }
    case BAI_JSON_NULL: break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A copy of exactly `size` bytes, so that a read past the end is an ASan report.
  std::unique_ptr<char[]> text(new char[size]);
  if (size > 0) std::memcpy(text.get(), data, size);
  bai_json_value root;
  if (bai_json_parse(text.get(), size, &root) != BAI_JSON_OK) return 0;
  walk(root, 0);
  // The grammar only: ranges are each reader's choice. nlohmann refuses a number beyond a
  // double ("number overflow"); <bai/json.h> reads numbers as text and leaves it alone.
  std::string refusal;
  try {
    (void)nlohmann::json::parse(text.get(), text.get() + size);
  } catch (const nlohmann::json::exception& e) {
    refusal = e.what();
  }
  const bool grammatical = refusal.empty() || refusal.find("number overflow") != std::string::npos;
  bai::fuzz::require(grammatical, "what bai_json_parse accepts is JSON", refusal);
  return 0;
}
