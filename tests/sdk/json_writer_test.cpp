// The C JSON helper's writer (<bai/json.h>): escaping, decimals, and every way it refuses
// to write something that is not the document the caller meant.
#include <bai/json.h>

#include <gtest/gtest.h>

#include <climits>
#include <string>

namespace {

// Writes one string value with a growable writer and returns the document.
std::string quoted(const std::string& text) {
  bai_json_writer w;
  bai_json_writer_init_growable(&w);
  bai_json_write_string_n(&w, text.data(), text.size());
  char* out = nullptr;
  EXPECT_EQ(bai_json_writer_finish(&w, &out), BAI_JSON_OK) << text;
  std::string document = out != nullptr ? out : "";
  free(out);
  return document;
}

bai_json_status finishGrowable(bai_json_writer* w, std::string* document = nullptr) {
  char* out = nullptr;
  const bai_json_status status = bai_json_writer_finish(w, &out);
  if (document != nullptr && out != nullptr) *document = out;
  if (status != BAI_JSON_OK) {
    EXPECT_EQ(out, nullptr);
  }
  free(out);
  return status;
}

std::string decimalScaled(std::int64_t scaled, unsigned decimals) {
  bai_json_writer w;
  bai_json_writer_init_growable(&w);
  bai_json_write_decimal_scaled(&w, scaled, decimals);
  std::string document;
  EXPECT_EQ(finishGrowable(&w, &document), BAI_JSON_OK);
  return document;
}

bai_json_status decimalStatus(const char* text) {
  bai_json_writer w;
  bai_json_writer_init_growable(&w);
  bai_json_write_decimal(&w, text);
  return finishGrowable(&w);
}

TEST(JsonWriter, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(quoted("say \"hi\""), R"("say \"hi\"")");
  EXPECT_EQ(quoted("C:\\path"), R"("C:\\path")");
  EXPECT_EQ(quoted("a\nb\rc\td\be\ff"), R"("a\nb\rc\td\be\ff")");
  EXPECT_EQ(quoted(std::string("\x01\x1f", 2)), R"("\u0001\u001f")");
  EXPECT_EQ(quoted(std::string("nul\0here", 8)), R"("nul\u0000here")");
  EXPECT_EQ(quoted("/ and \x7f stay"), "\"/ and \x7f stay\"");
}

TEST(JsonWriter, PassesValidUtf8Through) {
  EXPECT_EQ(quoted("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(quoted("\xe6\x97\xa5\xe6\x9c\xac"), "\"\xe6\x97\xa5\xe6\x9c\xac\"");
  EXPECT_EQ(quoted("\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"), "\"\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"");
}

TEST(JsonWriter, RefusesInvalidUtf8InValuesAndKeys) {
  for (const char* bad : {"\xc0\x80", "\x80", "\xed\xa0\x80", "\xe6\x97", "\xf4\x90\x80\x80", "\xff", "\xe0\x80\xaf"}) {
    bai_json_writer w;
    bai_json_writer_init_growable(&w);
    bai_json_write_string(&w, bad);
    EXPECT_EQ(finishGrowable(&w), BAI_JSON_ERR_INVALID) << "value " << bad;
    bai_json_writer_init_growable(&w);
    bai_json_begin_object(&w);
    bai_json_key(&w, bad);
    bai_json_write_null(&w);
    bai_json_end_object(&w);
    EXPECT_EQ(finishGrowable(&w), BAI_JSON_ERR_INVALID) << "key " << bad;
  }
  const char character[] = "\xf0\x9f\x98\x80";  // one character cut short by the given length
  for (std::size_t n = 1; n < 4; ++n) {
    bai_json_writer w;
    bai_json_writer_init_growable(&w);
    bai_json_write_string_n(&w, character, n);
    EXPECT_EQ(finishGrowable(&w), BAI_JSON_ERR_INVALID) << n;
  }
}

TEST(JsonWriter, BuildsNestedObjectsAndArraysWithCommas) {
  bai_json_writer w;
  bai_json_writer_init_growable(&w);
  bai_json_begin_object(&w);
  bai_json_key(&w, "devices");
  bai_json_begin_array(&w);
  for (int i = 0; i < 2; ++i) {
    bai_json_begin_object(&w);
    bai_json_key(&w, "id");
    bai_json_write_int(&w, i);
    bai_json_key(&w, "ok");
    bai_json_write_bool(&w, i == 0);
    bai_json_end_object(&w);
  }
  bai_json_end_array(&w);
  bai_json_key(&w, "empty");
  bai_json_begin_array(&w);
  bai_json_end_array(&w);
  bai_json_key(&w, "none");
  bai_json_write_null(&w);
  bai_json_end_object(&w);
  std::string document;
  ASSERT_EQ(finishGrowable(&w, &document), BAI_JSON_OK);
  EXPECT_EQ(document, R"({"devices":[{"id":0,"ok":true},{"id":1,"ok":false}],"empty":[],"none":null})");
}

TEST(JsonWriter, WritesTheWholeInt64Range) {
  bai_json_writer w;
  bai_json_writer_init_growable(&w);
  bai_json_begin_array(&w);
  bai_json_write_int(&w, INT64_MIN);
  bai_json_write_int(&w, INT64_MAX);
  bai_json_write_int(&w, 0);
  bai_json_end_array(&w);
  std::string document;
  ASSERT_EQ(finishGrowable(&w, &document), BAI_JSON_OK);
  EXPECT_EQ(document, "[-9223372036854775808,9223372036854775807,0]");
}

TEST(JsonWriter, WritesDecimalsAsStringsExactly) {
  EXPECT_EQ(decimalScaled(125, 1), R"("12.5")");
  EXPECT_EQ(decimalScaled(5, 2), R"("0.05")");
  EXPECT_EQ(decimalScaled(-5, 2), R"("-0.05")");
  EXPECT_EQ(decimalScaled(7, 0), R"("7")");
  EXPECT_EQ(decimalScaled(1, 18), R"("0.000000000000000001")");
  EXPECT_EQ(decimalScaled(INT64_MIN, 0), R"("-9223372036854775808")");
  EXPECT_EQ(decimalScaled(INT64_MIN, 18), R"("-9.223372036854775808")");
  for (const char* good : {"0", "0.5", "-3", "17179869184", "0.01"}) EXPECT_EQ(decimalStatus(good), BAI_JSON_OK) << good;
  for (const char* bad : {"", "-", ".5", "1.", "1e5", "0x10", " 1", "1 ", "NaN", "1.2.3", "+1"}) {
    EXPECT_EQ(decimalStatus(bad), BAI_JSON_ERR_INVALID) << bad;
  }
  bai_json_writer w;
  bai_json_writer_init_growable(&w);
  bai_json_write_decimal_scaled(&w, 1, 19);
  EXPECT_EQ(finishGrowable(&w), BAI_JSON_ERR_INVALID);
}

TEST(JsonWriter, ReportsAFullBufferInsteadOfTruncating) {
  const char expected[] = R"({"key":"value"})";
  for (std::size_t size = 0; size <= sizeof expected; ++size) {
    std::string buffer(size + 1, '#');  // one guard byte past what the writer is given
    bai_json_writer w;
    bai_json_writer_init_buffer(&w, buffer.data(), size);
    bai_json_begin_object(&w);
    bai_json_key(&w, "key");
    bai_json_write_string(&w, "value");
    bai_json_end_object(&w);
    char* out = nullptr;
    const bai_json_status status = bai_json_writer_finish(&w, &out);
    EXPECT_EQ(buffer[size], '#') << "wrote past a buffer of " << size;
    if (size < sizeof expected) {
      EXPECT_EQ(status, BAI_JSON_ERR_OVERFLOW) << size;
      EXPECT_EQ(out, nullptr);
    } else {
      ASSERT_EQ(status, BAI_JSON_OK);
      EXPECT_EQ(out, buffer.data());
      EXPECT_STREQ(out, expected);
    }
  }
}

TEST(JsonWriter, GrowsForLongDocuments) {
  const std::string long_text(100000, 'x');
  EXPECT_EQ(quoted(long_text), "\"" + long_text + "\"");
}

TEST(JsonWriter, RefusesMisuse) {
  using Steps = void (*)(bai_json_writer*);
  const Steps misuses[] = {
      [](bai_json_writer*) {},                                                   // nothing written
      [](bai_json_writer* w) { bai_json_begin_object(w); },                      // left open
      [](bai_json_writer* w) { bai_json_begin_object(w), bai_json_write_int(w, 1), bai_json_end_object(w); },
      [](bai_json_writer* w) { bai_json_begin_array(w), bai_json_key(w, "k"), bai_json_end_array(w); },
      [](bai_json_writer* w) { bai_json_begin_object(w), bai_json_end_array(w); },
      [](bai_json_writer* w) { bai_json_begin_object(w), bai_json_key(w, "k"), bai_json_end_object(w); },
      [](bai_json_writer* w) { bai_json_begin_object(w), bai_json_key(w, "a"), bai_json_key(w, "b"); },
      [](bai_json_writer* w) { bai_json_write_int(w, 1), bai_json_write_int(w, 2); },  // two documents
      [](bai_json_writer* w) { bai_json_end_array(w); },
      [](bai_json_writer* w) { bai_json_key(w, "k"); },
  };
  for (std::size_t i = 0; i < std::size(misuses); ++i) {
    bai_json_writer w;
    bai_json_writer_init_growable(&w);
    misuses[i](&w);
    EXPECT_EQ(finishGrowable(&w), BAI_JSON_ERR_INVALID) << "misuse " << i;
  }
}

TEST(JsonWriter, BoundsNesting) {
  bai_json_writer w;
  bai_json_writer_init_growable(&w);
  for (int i = 0; i < BAI_JSON_MAX_DEPTH; ++i) bai_json_begin_array(&w);
  for (int i = 0; i < BAI_JSON_MAX_DEPTH; ++i) bai_json_end_array(&w);
  EXPECT_EQ(finishGrowable(&w), BAI_JSON_OK);
  bai_json_writer_init_growable(&w);
  for (int i = 0; i <= BAI_JSON_MAX_DEPTH; ++i) bai_json_begin_array(&w);
  EXPECT_EQ(finishGrowable(&w), BAI_JSON_ERR_DEPTH);
}

TEST(JsonWriter, TheFirstErrorSticksAndLaterCallsDoNothing) {
  char buffer[4];
  bai_json_writer w;
  bai_json_writer_init_buffer(&w, buffer, sizeof buffer);
  bai_json_write_string(&w, "too long");
  bai_json_write_string(&w, "\xff");  // would be INVALID, but OVERFLOW came first
  char* out = nullptr;
  EXPECT_EQ(bai_json_writer_finish(&w, &out), BAI_JSON_ERR_OVERFLOW);
  EXPECT_STREQ(bai_json_status_name(BAI_JSON_ERR_OVERFLOW), "the buffer is too small");
  EXPECT_STREQ(bai_json_status_name(99), "unknown status");
}

}  // namespace
