// json.h on its own as C++20: the same round trip as the C11 test, through C++ eyes.
#include <bai/json.h>

#include <string_view>

int main() {
  char buffer[64];
  bai_json_writer writer;
  bai_json_writer_init_buffer(&writer, buffer, sizeof buffer);
  bai_json_begin_array(&writer);
  bai_json_write_int(&writer, -7);
  bai_json_write_bool(&writer, true);
  bai_json_end_array(&writer);
  char* text = nullptr;
  if (bai_json_writer_finish(&writer, &text) != BAI_JSON_OK) return 1;
  bai_json_value root, element;
  bai_json_iter it;
  std::int64_t number = 0;
  const bool ok = bai_json_parse(text, std::string_view(text).size(), &root) == BAI_JSON_OK &&
                  bai_json_iterate(&root, &it) == BAI_JSON_OK && bai_json_next(&it, nullptr, &element) &&
                  bai_json_read_int(&element, &number) == BAI_JSON_OK && number == -7;
  return ok ? 0 : 1;
}
