/*
 * bai JSON helper, the writer. Part of <bai/json.h>, which documents ownership, errors
 * and threading; include that header, not this one.
 */
#ifndef BAI_JSON_WRITER_H
#define BAI_JSON_WRITER_H

#ifndef BAI_JSON_H
#error "include <bai/json.h>, not <bai/json_writer.h>"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Writer ---------------------------------------------------------------------- */

typedef struct bai_json_writer {
  char* data;             /* the text so far, NUL-terminated */
  size_t length;          /* bytes of text, without the NUL */
  size_t capacity;        /* bytes available at `data` */
  bool growable;          /* `data` is the writer's own and grows with realloc */
  bool after_key;         /* a key was written; its value comes next */
  bai_json_status status; /* the first error, or BAI_JSON_OK */
  uint32_t depth;         /* containers open */
  uint8_t open[BAI_JSON_MAX_DEPTH]; /* per open container: BAI_JSON_INTERNAL_* bits */
} bai_json_writer;

#define BAI_JSON_INTERNAL_OBJECT 1u
#define BAI_JSON_INTERNAL_NOT_EMPTY 2u

/* Writes into `buffer` of `size` bytes, which the caller owns and keeps. */
static inline void bai_json_writer_init_buffer(bai_json_writer* w, char* buffer, size_t size) {
  memset(w, 0, sizeof *w);
  w->data = buffer;
  w->capacity = size;
  if (size > 0) buffer[0] = '\0';
  else w->status = BAI_JSON_ERR_OVERFLOW;
}

/* Writes into a buffer the writer allocates; bai_json_writer_finish hands it over. */
static inline void bai_json_writer_init_growable(bai_json_writer* w) {
  memset(w, 0, sizeof *w);
  w->growable = true;
}

static inline void bai_json_internal_fail(bai_json_writer* w, bai_json_status status) {
  if (w->status == BAI_JSON_OK) w->status = status;
}

static inline void bai_json_internal_put(bai_json_writer* w, const char* bytes, size_t n) {
  if (w->status != BAI_JSON_OK) return;
  if (n > SIZE_MAX - w->length - 1) { bai_json_internal_fail(w, BAI_JSON_ERR_NO_MEMORY); return; }
  const size_t needed = w->length + n + 1;
  if (needed > w->capacity) {
    if (!w->growable) { bai_json_internal_fail(w, BAI_JSON_ERR_OVERFLOW); return; }
    size_t capacity = w->capacity > 0 ? w->capacity : 256;
    while (capacity < needed) {
      if (capacity > SIZE_MAX / 2) { bai_json_internal_fail(w, BAI_JSON_ERR_NO_MEMORY); return; }
      capacity *= 2;
    }
    char* grown = (char*)realloc(w->data, capacity);
    if (grown == NULL) { bai_json_internal_fail(w, BAI_JSON_ERR_NO_MEMORY); return; }
    w->data = grown;
    w->capacity = capacity;
  }
  memcpy(w->data + w->length, bytes, n);
  w->length += n;
  w->data[w->length] = '\0';
}

/* Puts the comma a value needs, and refuses a value where none may go. */
static inline bool bai_json_internal_before_value(bai_json_writer* w) {
  if (w->status != BAI_JSON_OK) return false;
  if (w->depth == 0) {
    if (w->length > 0) bai_json_internal_fail(w, BAI_JSON_ERR_INVALID); /* a second document */
    return w->status == BAI_JSON_OK;
  }
  uint8_t* open = &w->open[w->depth - 1];
  if (*open & BAI_JSON_INTERNAL_OBJECT) {
    if (!w->after_key) bai_json_internal_fail(w, BAI_JSON_ERR_INVALID);
    w->after_key = false;
    return w->status == BAI_JSON_OK;
  }
  if (*open & BAI_JSON_INTERNAL_NOT_EMPTY) bai_json_internal_put(w, ",", 1);
  *open |= BAI_JSON_INTERNAL_NOT_EMPTY;
  return w->status == BAI_JSON_OK;
}

/* Writes `text` as a quoted JSON string; the caller checked it is valid UTF-8. */
static inline void bai_json_internal_put_quoted(bai_json_writer* w, const char* text, size_t length) {
  static const char hex[] = "0123456789abcdef";
  bai_json_internal_put(w, "\"", 1);
  size_t plain = 0; /* start of the run of bytes that need no escape */
  for (size_t i = 0; i < length; ++i) {
    const unsigned char c = (unsigned char)text[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    bai_json_internal_put(w, text + plain, i - plain);
    plain = i + 1;
    char escape[6] = {'\\', (char)c, 0, 0, 0, 0};
    size_t escape_length = 2;
    if (c == '\n') escape[1] = 'n';
    else if (c == '\r') escape[1] = 'r';
    else if (c == '\t') escape[1] = 't';
    else if (c == '\b') escape[1] = 'b';
    else if (c == '\f') escape[1] = 'f';
    else if (c < 0x20) {
      escape[1] = 'u', escape[2] = '0', escape[3] = '0', escape[4] = hex[c >> 4], escape[5] = hex[c & 15];
      escape_length = 6;
    }
    bai_json_internal_put(w, escape, escape_length);
  }
  bai_json_internal_put(w, text + plain, length - plain);
  bai_json_internal_put(w, "\"", 1);
}

static inline void bai_json_internal_open(bai_json_writer* w, char bracket, uint8_t kind) {
  if (!bai_json_internal_before_value(w)) return;
  if (w->depth == BAI_JSON_MAX_DEPTH) { bai_json_internal_fail(w, BAI_JSON_ERR_DEPTH); return; }
  w->open[w->depth++] = kind;
  bai_json_internal_put(w, &bracket, 1);
}

static inline void bai_json_internal_close(bai_json_writer* w, char bracket, uint8_t kind) {
  if (w->status != BAI_JSON_OK) return;
  if (w->depth == 0 || w->after_key || (w->open[w->depth - 1] & BAI_JSON_INTERNAL_OBJECT) != kind) {
    bai_json_internal_fail(w, BAI_JSON_ERR_INVALID);
    return;
  }
  --w->depth;
  bai_json_internal_put(w, &bracket, 1);
}

static inline void bai_json_begin_object(bai_json_writer* w) { bai_json_internal_open(w, '{', BAI_JSON_INTERNAL_OBJECT); }
static inline void bai_json_end_object(bai_json_writer* w) { bai_json_internal_close(w, '}', BAI_JSON_INTERNAL_OBJECT); }
static inline void bai_json_begin_array(bai_json_writer* w) { bai_json_internal_open(w, '[', 0); }
static inline void bai_json_end_array(bai_json_writer* w) { bai_json_internal_close(w, ']', 0); }

/* Writes an object member's key (NUL-terminated UTF-8); its value must come next. */
static inline void bai_json_key(bai_json_writer* w, const char* key) {
  if (w->status != BAI_JSON_OK) return;
  const size_t length = strlen(key);
  if (w->depth == 0 || !(w->open[w->depth - 1] & BAI_JSON_INTERNAL_OBJECT) || w->after_key ||
      !bai_json_internal_utf8_valid(key, length)) {
    bai_json_internal_fail(w, BAI_JSON_ERR_INVALID);
    return;
  }
  if (w->open[w->depth - 1] & BAI_JSON_INTERNAL_NOT_EMPTY) bai_json_internal_put(w, ",", 1);
  w->open[w->depth - 1] |= BAI_JSON_INTERNAL_NOT_EMPTY;
  bai_json_internal_put_quoted(w, key, length);
  bai_json_internal_put(w, ":", 1);
  w->after_key = true;
}

/* Writes `length` bytes of UTF-8 text as a string; they may include NUL (as \u0000). */
static inline void bai_json_write_string_n(bai_json_writer* w, const char* text, size_t length) {
  if (w->status != BAI_JSON_OK) return;
  if (!bai_json_internal_utf8_valid(text, length)) { bai_json_internal_fail(w, BAI_JSON_ERR_INVALID); return; }
  if (bai_json_internal_before_value(w)) bai_json_internal_put_quoted(w, text, length);
}

static inline void bai_json_write_string(bai_json_writer* w, const char* text) {
  bai_json_write_string_n(w, text, strlen(text));
}

static inline void bai_json_write_int(bai_json_writer* w, int64_t value) {
  char digits[24];
  const int n = snprintf(digits, sizeof digits, "%" PRId64, value);
  if (bai_json_internal_before_value(w)) bai_json_internal_put(w, digits, (size_t)n);
}

static inline void bai_json_write_bool(bai_json_writer* w, bool value) {
  if (bai_json_internal_before_value(w)) bai_json_internal_put(w, value ? "true" : "false", value ? 4 : 5);
}

static inline void bai_json_write_null(bai_json_writer* w) {
  if (bai_json_internal_before_value(w)) bai_json_internal_put(w, "null", 4);
}

/* Writes a decimal given as text ("0.5", "-3", "17179869184") as a JSON string, the way
 * the ABI carries quantities. Anything but -?[0-9]+(\.[0-9]+)? is BAI_JSON_ERR_INVALID. */
static inline void bai_json_write_decimal(bai_json_writer* w, const char* text) {
  const size_t length = strlen(text);
  size_t i = text[0] == '-' ? 1 : 0;
  const size_t integer_start = i;
  while (i < length && text[i] >= '0' && text[i] <= '9') ++i;
  bool valid = i > integer_start;
  if (valid && i < length && text[i] == '.') {
    const size_t fraction_start = ++i;
    while (i < length && text[i] >= '0' && text[i] <= '9') ++i;
    valid = i > fraction_start;
  }
  if (!valid || i != length) { bai_json_internal_fail(w, BAI_JSON_ERR_INVALID); return; }
  if (bai_json_internal_before_value(w)) bai_json_internal_put_quoted(w, text, length);
}

/* Writes scaled / 10^decimals exactly, as a JSON string: (125, 1) gives "12.5",
 * (5, 2) gives "0.05", (7, 0) gives "7". `decimals` is at most 18. */
static inline void bai_json_write_decimal_scaled(bai_json_writer* w, int64_t scaled, unsigned decimals) {
  if (decimals > 18) { bai_json_internal_fail(w, BAI_JSON_ERR_INVALID); return; }
  const uint64_t magnitude = scaled < 0 ? (uint64_t)0 - (uint64_t)scaled : (uint64_t)scaled;
  char digits[24];
  int n = snprintf(digits, sizeof digits, "%0*" PRIu64, (int)decimals + 1, magnitude);
  char text[48];
  size_t length = 0;
  if (scaled < 0) text[length++] = '-';
  const size_t integer_digits = (size_t)n - decimals;
  memcpy(text + length, digits, integer_digits);
  length += integer_digits;
  if (decimals > 0) {
    text[length++] = '.';
    memcpy(text + length, digits + integer_digits, decimals);
    length += decimals;
  }
  text[length] = '\0';
  bai_json_write_decimal(w, text);
}

/* Ends writing. On BAI_JSON_OK `*out` is the complete document, NUL-terminated: for a
 * growable writer a malloc-ed string the caller now owns (release it with free()), for a
 * buffer writer the caller's buffer. Otherwise `*out` is NULL, a growable writer's buffer
 * is freed, and the status says why: the first error, or BAI_JSON_ERR_INVALID when no
 * value or an unclosed one was written. The writer holds nothing afterwards. */
static inline bai_json_status bai_json_writer_finish(bai_json_writer* w, char** out) {
  if (w->status == BAI_JSON_OK && (w->length == 0 || w->depth > 0)) w->status = BAI_JSON_ERR_INVALID;
  const bai_json_status status = w->status;
  *out = status == BAI_JSON_OK ? w->data : NULL;
  if (status != BAI_JSON_OK && w->growable) free(w->data);
  memset(w, 0, sizeof *w);
  w->status = BAI_JSON_ERR_INVALID; /* finished: further writes do nothing */
  return status;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BAI_JSON_WRITER_H */
