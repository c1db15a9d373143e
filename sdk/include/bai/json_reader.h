/*
 * bai JSON helper, the reader. Part of <bai/json.h>, which documents ownership, errors
 * and threading; include that header, not this one.
 */
#ifndef BAI_JSON_READER_H
#define BAI_JSON_READER_H

#ifndef BAI_JSON_H
#error "include <bai/json.h>, not <bai/json_reader.h>"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Reader ---------------------------------------------------------------------- */

typedef enum bai_json_type {
  BAI_JSON_NULL,
  BAI_JSON_BOOL,
  BAI_JSON_NUMBER,
  BAI_JSON_STRING,
  BAI_JSON_ARRAY,
  BAI_JSON_OBJECT
} bai_json_type;

/* A view of one value inside a parsed document: `text` points at its first byte and
 * `length` covers it whole (quotes and brackets included). Only parse, get and next
 * make them. */
typedef struct bai_json_value {
  const char* text;
  size_t length;
  bai_json_type type;
} bai_json_value;

/* What a lookup that failed leaves in its out parameter: no text, typed null, so that
 * every later read of it fails cleanly instead of reading an uninitialized view. */
static inline bai_json_value bai_json_internal_nothing(void) {
  bai_json_value nothing = {NULL, 0, BAI_JSON_NULL};
  return nothing;
}

static inline const char* bai_json_internal_skip_space(const char* p, const char* end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  return p;
}

static inline int bai_json_internal_hex(const char* p, const char* end) {
  if (end - p < 4) return -1;
  int value = 0;
  for (int i = 0; i < 4; ++i) {
    const char c = p[i];
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                      : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

/* Writes code point `code` (a valid scalar value) as UTF-8; returns the byte count. */
static inline size_t bai_json_internal_encode_utf8(uint32_t code, char bytes[4]) {
  if (code < 0x80) {
    bytes[0] = (char)code;
    return 1;
  }
  const size_t length = code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
  for (size_t i = length - 1; i > 0; --i, code >>= 6) bytes[i] = (char)(0x80 | (code & 0x3F));
  bytes[0] = (char)(lead[length] | code);
  return length;
}

/* Decodes the character at `*p` inside a string body (before the closing quote) into
 * UTF-8 `bytes` and advances `*p`. Returns the byte count, or 0 for a bad escape, a lone
 * surrogate, a raw control character or invalid UTF-8. */
static inline size_t bai_json_internal_next_char(const char** p, const char* end, char bytes[4]) {
  const char* at = *p;
  if ((unsigned char)*at < 0x20) return 0;
  if (*at != '\\') {
    const size_t n = bai_json_internal_utf8_length((const unsigned char*)at, (const unsigned char*)end);
    if (n > 0) {
      memcpy(bytes, at, n);
      *p = at + n;
    }
    return n;
  }
  if (end - at < 2) return 0;
  static const char escaped[] = "\"\\/bfnrt", decoded[] = "\"\\/\b\f\n\r\t";
  const char* simple = at[1] != '\0' ? strchr(escaped, at[1]) : NULL;
  if (simple != NULL) {
    bytes[0] = decoded[simple - escaped];
    *p = at + 2;
    return 1;
  }
  if (at[1] != 'u') return 0;
  long code = bai_json_internal_hex(at + 2, end);
  if (code < 0 || (code >= 0xDC00 && code <= 0xDFFF)) return 0;
  at += 6;
  if (code >= 0xD800 && code <= 0xDBFF) {
    const long low = end - at >= 2 && at[0] == '\\' && at[1] == 'u' ? bai_json_internal_hex(at + 2, end) : -1;
    if (low < 0xDC00 || low > 0xDFFF) return 0;
    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    at += 6;
  }
  *p = at;
  return bai_json_internal_encode_utf8((uint32_t)code, bytes);
}

/* Checks the string starting at the quote `p`; `*after` gets the byte after its end. */
static inline bai_json_status bai_json_internal_scan_string(const char* p, const char* end, const char** after) {
  char bytes[4];
  for (++p; p < end && *p != '"';) {
    if (bai_json_internal_next_char(&p, end, bytes) == 0) return BAI_JSON_ERR_SYNTAX;
  }
  if (p >= end) return BAI_JSON_ERR_SYNTAX;
  *after = p + 1;
  return BAI_JSON_OK;
}

static inline const char* bai_json_internal_skip_digits(const char* p, const char* end) {
  while (p < end && *p >= '0' && *p <= '9') ++p;
  return p;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static inline bai_json_status bai_json_internal_scan_number(const char* p, const char* end, const char** after) {
  if (p < end && *p == '-') ++p;
  if (p >= end || *p < '0' || *p > '9') return BAI_JSON_ERR_SYNTAX;
  const char* digits = p;
  p = *p == '0' ? p + 1 : bai_json_internal_skip_digits(p, end);
  if (p < end && *p == '.') {
    digits = ++p;
    if ((p = bai_json_internal_skip_digits(p, end)) == digits) return BAI_JSON_ERR_SYNTAX;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    if (++p < end && (*p == '+' || *p == '-')) ++p;
    digits = p;
    if ((p = bai_json_internal_skip_digits(p, end)) == digits) return BAI_JSON_ERR_SYNTAX;
  }
  *after = p;
  return BAI_JSON_OK;
}

static inline bai_json_status bai_json_internal_scan_value(const char* p, const char* end, int depth,
                                                            bai_json_value* value);

/* Checks the array or object whose bracket is at `p`, `depth` containers deep. */
static inline bai_json_status bai_json_internal_scan_container(const char* p, const char* end, int depth,
                                                                const char** after) {
  const bool object = *p == '{';
  const char close = object ? '}' : ']';
  if (depth >= BAI_JSON_MAX_DEPTH) return BAI_JSON_ERR_DEPTH;
  p = bai_json_internal_skip_space(p + 1, end);
  if (p < end && *p == close) {
    *after = p + 1;
    return BAI_JSON_OK;
  }
  for (;;) {
    bai_json_value member;
    bai_json_status status;
    if (object) {
      if (p >= end || *p != '"') return BAI_JSON_ERR_SYNTAX;
      if ((status = bai_json_internal_scan_string(p, end, &p)) != BAI_JSON_OK) return status;
      p = bai_json_internal_skip_space(p, end);
      if (p >= end || *p != ':') return BAI_JSON_ERR_SYNTAX;
      p = bai_json_internal_skip_space(p + 1, end);
    }
    if ((status = bai_json_internal_scan_value(p, end, depth + 1, &member)) != BAI_JSON_OK) return status;
    p = bai_json_internal_skip_space(member.text + member.length, end);
    if (p < end && *p == close) break;
    if (p >= end || *p != ',') return BAI_JSON_ERR_SYNTAX;
    p = bai_json_internal_skip_space(p + 1, end);
  }
  *after = p + 1;
  return BAI_JSON_OK;
}

/* Checks the literal `word` at `p`; `*after` gets the byte after it. */
static inline bai_json_status bai_json_internal_scan_literal(const char* p, const char* end, const char* word,
                                                              const char** after) {
  const size_t n = strlen(word);
  if ((size_t)(end - p) < n || memcmp(p, word, n) != 0) return BAI_JSON_ERR_SYNTAX;
  *after = p + n;
  return BAI_JSON_OK;
}

/* Checks the value at `p` (no leading space) and describes it in `*value`. */
static inline bai_json_status bai_json_internal_scan_value(const char* p, const char* end, int depth,
                                                            bai_json_value* value) {
  if (p >= end) return BAI_JSON_ERR_SYNTAX;
  const char* after = p;
  bai_json_status status = BAI_JSON_ERR_SYNTAX;
  bai_json_type type = BAI_JSON_NULL;
  switch (*p) {
    case 'n': status = bai_json_internal_scan_literal(p, end, "null", &after); break;
    case 't': status = bai_json_internal_scan_literal(p, end, "true", &after), type = BAI_JSON_BOOL; break;
    case 'f': status = bai_json_internal_scan_literal(p, end, "false", &after), type = BAI_JSON_BOOL; break;
    case '"': status = bai_json_internal_scan_string(p, end, &after), type = BAI_JSON_STRING; break;
    case '[': status = bai_json_internal_scan_container(p, end, depth, &after), type = BAI_JSON_ARRAY; break;
    case '{': status = bai_json_internal_scan_container(p, end, depth, &after), type = BAI_JSON_OBJECT; break;
    default: status = bai_json_internal_scan_number(p, end, &after), type = BAI_JSON_NUMBER; break;
  }
  if (status != BAI_JSON_OK) return status;
  value->text = p;
  value->length = (size_t)(after - p);
  value->type = type;
  return BAI_JSON_OK;
}

/* Checks that `text[0..length)` is exactly one JSON document (surrounding white space
 * allowed) and makes `*root` a view of it. Returns BAI_JSON_OK, BAI_JSON_ERR_SYNTAX or
 * BAI_JSON_ERR_DEPTH; on failure `*root` is a view of nothing (typed null, length 0). */
static inline bai_json_status bai_json_parse(const char* text, size_t length, bai_json_value* root) {
  const char* end = text + length;
  *root = bai_json_internal_nothing();
  bai_json_value value;
  const bai_json_status status = bai_json_internal_scan_value(bai_json_internal_skip_space(text, end), end, 0, &value);
  if (status != BAI_JSON_OK) return status;
  if (bai_json_internal_skip_space(value.text + value.length, end) != end) return BAI_JSON_ERR_SYNTAX;
  *root = value;
  return BAI_JSON_OK;
}

/* Walks the members of an object or the elements of an array, in order. */
typedef struct bai_json_iter {
  const char* next; /* the next member, or the closing bracket */
  const char* end;  /* the closing bracket */
  bool object;
} bai_json_iter;

/* Starts `*it` on `container`; BAI_JSON_ERR_TYPE when it is neither array nor object. */
static inline bai_json_status bai_json_iterate(const bai_json_value* container, bai_json_iter* it) {
  if (container->type != BAI_JSON_ARRAY && container->type != BAI_JSON_OBJECT) return BAI_JSON_ERR_TYPE;
  it->next = container->text + 1;
  it->end = container->text + container->length - 1;
  it->object = container->type == BAI_JSON_OBJECT;
  return BAI_JSON_OK;
}

/* Moves to the next member: sets `*value` and, for an object, `*key` (a string value;
 * `key` may be NULL, and is ignored for an array). Returns false at the end, where
 * both are views of nothing. */
static inline bool bai_json_next(bai_json_iter* it, bai_json_value* key, bai_json_value* value) {
  *value = bai_json_internal_nothing();
  if (key != NULL) *key = bai_json_internal_nothing();
  const char* p = bai_json_internal_skip_space(it->next, it->end);
  if (p >= it->end) return false;
  if (it->object) {
    bai_json_value name;
    if (bai_json_internal_scan_value(p, it->end, 0, &name) != BAI_JSON_OK || name.type != BAI_JSON_STRING) return false;
    if (key != NULL) *key = name;
    p = bai_json_internal_skip_space(name.text + name.length, it->end);
    if (p >= it->end || *p != ':') return false;
    p = bai_json_internal_skip_space(p + 1, it->end);
  }
  if (bai_json_internal_scan_value(p, it->end, 0, value) != BAI_JSON_OK) return false;
  p = bai_json_internal_skip_space(value->text + value->length, it->end);
  it->next = p < it->end && *p == ',' ? p + 1 : it->end;
  return true;
}

/* Decodes the string `value` into `buffer` of `size` bytes, NUL-terminated. `*needed`
 * (if not NULL) receives the size required including the NUL; `buffer` may be NULL when
 * `size` is 0, to learn that size first. Returns BAI_JSON_OK,
 * BAI_JSON_ERR_OVERFLOW when it did not fit (the buffer then holds no partial text),
 * BAI_JSON_ERR_TYPE for a value that is not a string, BAI_JSON_ERR_INVALID when the
 * string holds U+0000. */
static inline bai_json_status bai_json_read_string(const bai_json_value* value, char* buffer, size_t size,
                                                   size_t* needed) {
  if (value->type != BAI_JSON_STRING) return BAI_JSON_ERR_TYPE;
  const char* p = value->text + 1;
  const char* end = value->text + value->length - 1;
  size_t length = 0;
  char bytes[4];
  while (p < end) {
    const size_t n = bai_json_internal_next_char(&p, end, bytes);
    if (n == 0 || (n == 1 && bytes[0] == '\0')) return BAI_JSON_ERR_INVALID;
    if (length + n < size) memcpy(buffer + length, bytes, n);
    length += n;
  }
  if (needed != NULL) *needed = length + 1;
  if (length >= size) {
    if (size > 0) buffer[0] = '\0';
    return BAI_JSON_ERR_OVERFLOW;
  }
  buffer[length] = '\0';
  return BAI_JSON_OK;
}

/* Whether the string `value` decodes to exactly the NUL-terminated `text`. */
static inline bool bai_json_string_equals(const bai_json_value* value, const char* text) {
  if (value->type != BAI_JSON_STRING) return false;
  const char* p = value->text + 1;
  const char* end = value->text + value->length - 1;
  const size_t text_length = strlen(text);
  size_t matched = 0;
  char bytes[4];
  while (p < end) {
    const size_t n = bai_json_internal_next_char(&p, end, bytes);
    if (n == 0 || n > text_length - matched || memcmp(text + matched, bytes, n) != 0) return false;
    matched += n;
  }
  return matched == text_length;
}

/* Finds member `key` of the object `object` (the first, should the text repeat it).
 * Returns BAI_JSON_OK with `*value` set, BAI_JSON_ERR_NOT_FOUND, or BAI_JSON_ERR_TYPE
 * when `object` is not an object; on failure `*value` is a view of nothing. */
static inline bai_json_status bai_json_get(const bai_json_value* object, const char* key, bai_json_value* value) {
  *value = bai_json_internal_nothing();
  if (object->type != BAI_JSON_OBJECT) return BAI_JSON_ERR_TYPE;
  bai_json_iter it;
  bai_json_iterate(object, &it);
  bai_json_value name, member;
  while (bai_json_next(&it, &name, &member)) {
    if (bai_json_string_equals(&name, key)) {
      *value = member;
      return BAI_JSON_OK;
    }
  }
  return BAI_JSON_ERR_NOT_FOUND;
}

/* Reads an integral number (no fraction, no exponent) into `*out`. Returns BAI_JSON_OK,
 * BAI_JSON_ERR_TYPE for anything else, BAI_JSON_ERR_RANGE when it does not fit; on
 * failure `*out` is 0. */
static inline bai_json_status bai_json_read_int(const bai_json_value* value, int64_t* out) {
  *out = 0;
  if (value->type != BAI_JSON_NUMBER) return BAI_JSON_ERR_TYPE;
  const bool negative = value->text[0] == '-';
  const uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  uint64_t magnitude = 0;
  for (size_t i = negative ? 1 : 0; i < value->length; ++i) {
    const char c = value->text[i];
    if (c < '0' || c > '9') return BAI_JSON_ERR_TYPE;
    const uint64_t digit = (uint64_t)(c - '0');
    if (magnitude > (limit - digit) / 10) return BAI_JSON_ERR_RANGE;
    magnitude = magnitude * 10 + digit;
  }
  if (!negative) *out = (int64_t)magnitude;
  else *out = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
  return BAI_JSON_OK;
}

/* Reads true or false into `*out`; BAI_JSON_ERR_TYPE (and false) for anything else. */
static inline bai_json_status bai_json_read_bool(const bai_json_value* value, bool* out) {
  *out = false;
  if (value->type != BAI_JSON_BOOL) return BAI_JSON_ERR_TYPE;
  *out = value->text[0] == 't';
  return BAI_JSON_OK;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BAI_JSON_READER_H */
