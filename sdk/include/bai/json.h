/*
 * bai JSON helper for plain-C plugins: a writer and a reader, header-only.
 *
 * Every payload that crosses the plugin ABI is a UTF-8 JSON document; C++ plugins have
 * nlohmann::json through plugin.hpp, C plugins have this. It covers what a plugin needs,
 * not all of JSON's uses: build objects and arrays of strings, integers, exact decimals,
 * booleans and null; read what the host passes in (config, session documents).
 *
 * Writer. A `bai_json_writer` fills either a caller's buffer (bai_json_writer_init_buffer)
 * or a buffer it grows with realloc (bai_json_writer_init_growable). The first error
 * sticks: every later call does nothing, and bai_json_writer_finish reports it. Nothing
 * is ever truncated silently: a full caller's buffer gives BAI_JSON_ERR_OVERFLOW, a failed
 * realloc BAI_JSON_ERR_NO_MEMORY. Strings must be valid UTF-8 (passed through as is);
 * quotes, backslashes and control characters are escaped. Decimals (every bai quantity)
 * are written as JSON strings from text or from a scaled integer, never from a double.
 *
 * Reader. bai_json_parse checks a whole document once: its syntax, nesting at most
 * BAI_JSON_MAX_DEPTH deep, string escapes (surrogates paired), UTF-8, and that nothing
 * follows it. It never reads past `length` and needs no NUL. The `bai_json_value`s it
 * and the lookups return are views into the caller's text: valid while that text is.
 * Reading a string decodes its escapes into a caller's buffer; a string holding U+0000
 * is refused there, as a C string could not carry it.
 *
 * Ownership: nothing here keeps a global state. A growable writer owns its buffer until
 * bai_json_writer_finish hands it over (release it with free(), e.g. from the plugin's
 * free_string) or frees it on failure. Threading: one writer or one value per thread at
 * a time; distinct ones are independent.
 *
 * This header depends only on the C standard library; it compiles as C11 and as C++.
 */
#ifndef BAI_JSON_H
#define BAI_JSON_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t bai_json_status;
#define BAI_JSON_OK 0
#define BAI_JSON_ERR_OVERFLOW 1  /* the caller's buffer is too small */
#define BAI_JSON_ERR_NO_MEMORY 2 /* a growable writer could not grow */
#define BAI_JSON_ERR_INVALID 3   /* misuse (a value without a key, unclosed object), bad UTF-8 or decimal text */
#define BAI_JSON_ERR_SYNTAX 4    /* the text is not one JSON document: truncated, bad escape, bad UTF-8 */
#define BAI_JSON_ERR_DEPTH 5     /* nested deeper than BAI_JSON_MAX_DEPTH */
#define BAI_JSON_ERR_TYPE 6      /* the value is not of the type asked for */
#define BAI_JSON_ERR_NOT_FOUND 7 /* no such key */
#define BAI_JSON_ERR_RANGE 8     /* an integer outside int64_t */

/* Objects and arrays nest at most this deep, in what is written and what is read. */
#define BAI_JSON_MAX_DEPTH 64

/* A short English name for a status, for log lines. */
static inline const char* bai_json_status_name(bai_json_status status) {
  static const char* const names[] = {"ok", "the buffer is too small", "out of memory", "invalid use or invalid text",
                                      "not a JSON document", "nested too deep", "wrong type", "no such key",
                                      "out of range"};
  return status >= 0 && status <= BAI_JSON_ERR_RANGE ? names[status] : "unknown status";
}

/* ---- UTF-8, shared by the writer and the reader ------------------------------------ */

/* The length of the valid UTF-8 sequence at `p` (1 to 4), or 0 when it is invalid:
 * truncated, overlong, a surrogate or above U+10FFFF. Never reads at or past `end`. */
static inline size_t bai_json_internal_utf8_length(const unsigned char* p, const unsigned char* end) {
  const size_t left = (size_t)(end - p);
  if (left == 0) return 0;
  if (p[0] < 0x80) return 1;
  /* The lead byte gives the length; 0x80..0xC1 and 0xF5..0xFF never lead. */
  const size_t length = p[0] >= 0xC2 && p[0] <= 0xDF ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : 0;
  if (length == 0 || left < length) return 0;
  static const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000}; /* below it, overlong */
  const uint32_t min = smallest[length];
  uint32_t code = p[0] & (0x7Fu >> length);
  for (size_t i = 1; i < length; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    code = (code << 6) | (p[i] & 0x3Fu);
  }
  if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

static inline bool bai_json_internal_utf8_valid(const char* text, size_t length) {
  const unsigned char* p = (const unsigned char*)text;
  const unsigned char* end = p + length;
  while (p < end) {
    const size_t n = bai_json_internal_utf8_length(p, end);
    if (n == 0) return false;
    p += n;
  }
  return true;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

/* The writer and the reader, in two files to keep each readable; include only this one. */
#include "json_writer.h"
#include "json_reader.h"

#endif /* BAI_JSON_H */
