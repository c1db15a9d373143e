/* json.h on its own as strict C11 (no extensions): write a document, read it back. */
#include <bai/json.h>

int main(void) {
  bai_json_writer writer;
  bai_json_writer_init_growable(&writer);
  bai_json_begin_object(&writer);
  bai_json_key(&writer, "memory");
  bai_json_write_decimal(&writer, "17179869184");
  bai_json_end_object(&writer);
  char* text = NULL;
  if (bai_json_writer_finish(&writer, &text) != BAI_JSON_OK) return 1;
  bai_json_value root, memory;
  char buffer[32];
  const int ok = bai_json_parse(text, strlen(text), &root) == BAI_JSON_OK &&
                 bai_json_get(&root, "memory", &memory) == BAI_JSON_OK &&
                 bai_json_read_string(&memory, buffer, sizeof buffer, NULL) == BAI_JSON_OK &&
                 strcmp(buffer, "17179869184") == 0;
  free(text);
  return ok ? 0 : 1;
}
