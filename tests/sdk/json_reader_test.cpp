// The C JSON helper's reader (<bai/json.h>): round trips with the writer, decoding, and
// hostile input. Every document is placed right before an unreadable page, so a read
// past the given length crashes the test instead of passing unnoticed.
#include <bai/json.h>

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace {

// `text` copied to the end of a readable page followed by a PROT_NONE page, with no NUL.
class GuardedText {
 public:
  explicit GuardedText(const std::string& text) {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    pages_ = (text.size() / page + 2) * page;
    void* mapped = mmap(nullptr, pages_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) throw std::runtime_error("mmap failed");
    base_ = static_cast<char*>(mapped);
    if (mprotect(base_ + pages_ - page, page, PROT_NONE) != 0) throw std::runtime_error("mprotect failed");
    data_ = base_ + pages_ - page - text.size();
    std::memcpy(data_, text.data(), text.size());
    size_ = text.size();
  }
  ~GuardedText() { munmap(base_, pages_); }
  GuardedText(const GuardedText&) = delete;
  GuardedText& operator=(const GuardedText&) = delete;

  bai_json_status parse(bai_json_value* root) const { return bai_json_parse(data_, size_, root); }

 private:
  char* base_ = nullptr;
  char* data_ = nullptr;
  std::size_t pages_ = 0, size_ = 0;
};

bai_json_status parseStatus(const std::string& text) {
  bai_json_value root;
  return GuardedText(text).parse(&root);
}

std::string readString(const bai_json_value& value) {
  char buffer[256];
  EXPECT_EQ(bai_json_read_string(&value, buffer, sizeof buffer, nullptr), BAI_JSON_OK);
  return buffer;
}

// The host's session document, as prepare_session receives it.
const char* const kSession =
    R"({"session_id": "s-1", "allocation": {"acme.device": {"0": "1", "2": "0.5"}, "acme.mem": {}}})";

TEST(JsonReader, FindsKeysAndIteratesObjectsInOrder) {
  GuardedText text(kSession);
  bai_json_value root, id, allocation, devices, key, amount;
  ASSERT_EQ(text.parse(&root), BAI_JSON_OK);
  EXPECT_EQ(root.type, BAI_JSON_OBJECT);
  ASSERT_EQ(bai_json_get(&root, "session_id", &id), BAI_JSON_OK);
  EXPECT_EQ(readString(id), "s-1");
  ASSERT_EQ(bai_json_get(&root, "allocation", &allocation), BAI_JSON_OK);
  ASSERT_EQ(bai_json_get(&allocation, "acme.device", &devices), BAI_JSON_OK);
  bai_json_iter it;
  ASSERT_EQ(bai_json_iterate(&devices, &it), BAI_JSON_OK);
  std::string seen;
  while (bai_json_next(&it, &key, &amount)) seen += readString(key) + "=" + readString(amount) + ";";
  EXPECT_EQ(seen, "0=1;2=0.5;");
  bai_json_value empty, missing;
  ASSERT_EQ(bai_json_get(&allocation, "acme.mem", &empty), BAI_JSON_OK);
  ASSERT_EQ(bai_json_iterate(&empty, &it), BAI_JSON_OK);
  EXPECT_FALSE(bai_json_next(&it, &key, &amount));
  EXPECT_EQ(bai_json_get(&allocation, "acme", &missing), BAI_JSON_ERR_NOT_FOUND);
  EXPECT_EQ(bai_json_get(&id, "x", &missing), BAI_JSON_ERR_TYPE);
  EXPECT_EQ(bai_json_iterate(&id, &it), BAI_JSON_ERR_TYPE);
}

TEST(JsonReader, MatchesKeysByTheirDecodedText) {
  GuardedText text(R"({"a\u0062": 1, "ab": 2, "caf\u00e9": 3})");
  bai_json_value root, value;
  ASSERT_EQ(text.parse(&root), BAI_JSON_OK);
  std::int64_t number = 0;
  ASSERT_EQ(bai_json_get(&root, "ab", &value), BAI_JSON_OK);
  ASSERT_EQ(bai_json_read_int(&value, &number), BAI_JSON_OK);
  EXPECT_EQ(number, 1) << "the first of repeated keys wins";
  ASSERT_EQ(bai_json_get(&root, "caf\xc3\xa9", &value), BAI_JSON_OK);
  EXPECT_EQ(bai_json_get(&root, "a", &value), BAI_JSON_ERR_NOT_FOUND);
  EXPECT_EQ(bai_json_get(&root, "abc", &value), BAI_JSON_ERR_NOT_FOUND);
}

TEST(JsonReader, DecodesEveryEscape) {
  GuardedText text(R"(["\"\\\/\b\f\n\r\t", "\u00e9\u65e5\ud83d\ude00", "raw \u0041 caf)" "\xc3\xa9\"]");
  bai_json_value root, element;
  ASSERT_EQ(text.parse(&root), BAI_JSON_OK);
  bai_json_iter it;
  ASSERT_EQ(bai_json_iterate(&root, &it), BAI_JSON_OK);
  ASSERT_TRUE(bai_json_next(&it, nullptr, &element));
  EXPECT_EQ(readString(element), "\"\\/\b\f\n\r\t");
  ASSERT_TRUE(bai_json_next(&it, nullptr, &element));
  EXPECT_EQ(readString(element), "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80");
  ASSERT_TRUE(bai_json_next(&it, nullptr, &element));
  EXPECT_EQ(readString(element), "raw A caf\xc3\xa9");
  EXPECT_FALSE(bai_json_next(&it, nullptr, &element));
}

TEST(JsonReader, ReportsTheSizeAStringNeeds) {
  GuardedText text(R"(["abcdef", "nul\u0000inside", 5])");
  bai_json_value root, element;
  ASSERT_EQ(text.parse(&root), BAI_JSON_OK);
  bai_json_iter it;
  ASSERT_EQ(bai_json_iterate(&root, &it), BAI_JSON_OK);
  ASSERT_TRUE(bai_json_next(&it, nullptr, &element));
  char small[6] = "?????";
  std::size_t needed = 0;
  EXPECT_EQ(bai_json_read_string(&element, small, sizeof small, &needed), BAI_JSON_ERR_OVERFLOW);
  EXPECT_EQ(needed, 7u);
  EXPECT_STREQ(small, "") << "no partial text";
  needed = 0;
  EXPECT_EQ(bai_json_read_string(&element, nullptr, 0, &needed), BAI_JSON_ERR_OVERFLOW);
  EXPECT_EQ(needed, 7u) << "a NULL buffer of size 0 asks for the size";
  char exact[7];
  EXPECT_EQ(bai_json_read_string(&element, exact, sizeof exact, &needed), BAI_JSON_OK);
  EXPECT_STREQ(exact, "abcdef");
  ASSERT_TRUE(bai_json_next(&it, nullptr, &element));
  EXPECT_EQ(bai_json_read_string(&element, exact, sizeof exact, nullptr), BAI_JSON_ERR_INVALID);
  ASSERT_TRUE(bai_json_next(&it, nullptr, &element));
  EXPECT_EQ(bai_json_read_string(&element, exact, sizeof exact, nullptr), BAI_JSON_ERR_TYPE);
}

TEST(JsonReader, ReadsIntegersAndBooleansWithinRange) {
  GuardedText text(R"([9223372036854775807, -9223372036854775808, 9223372036854775808,
                       -9223372036854775809, 1.5, 1e3, -0, true, false, "7"])");
  bai_json_value root, element;
  ASSERT_EQ(text.parse(&root), BAI_JSON_OK);
  bai_json_iter it;
  ASSERT_EQ(bai_json_iterate(&root, &it), BAI_JSON_OK);
  const bai_json_status expected[] = {BAI_JSON_OK,         BAI_JSON_OK,        BAI_JSON_ERR_RANGE, BAI_JSON_ERR_RANGE,
                                      BAI_JSON_ERR_TYPE,   BAI_JSON_ERR_TYPE,  BAI_JSON_OK,        BAI_JSON_ERR_TYPE,
                                      BAI_JSON_ERR_TYPE,   BAI_JSON_ERR_TYPE};
  std::int64_t numbers[std::size(expected)] = {};
  for (std::size_t i = 0; i < std::size(expected); ++i) {
    ASSERT_TRUE(bai_json_next(&it, nullptr, &element)) << i;
    EXPECT_EQ(bai_json_read_int(&element, &numbers[i]), expected[i]) << i;
    bool flag = false;
    EXPECT_EQ(bai_json_read_bool(&element, &flag), element.type == BAI_JSON_BOOL ? BAI_JSON_OK : BAI_JSON_ERR_TYPE);
    EXPECT_EQ(flag, i == 7) << i;
  }
  EXPECT_EQ(numbers[0], INT64_MAX);
  EXPECT_EQ(numbers[1], INT64_MIN);
  EXPECT_EQ(numbers[6], 0);
}

TEST(JsonReader, RoundTripsWhatTheWriterWrites) {
  const std::string texts[] = {"", "plain", "quote \" backslash \\ slash /", std::string("\x01\x1f\x7f", 3),
                               "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80", "line\nbreak\ttab"};
  for (const auto& original : texts) {
    bai_json_writer w;
    bai_json_writer_init_growable(&w);
    bai_json_begin_object(&w);
    bai_json_key(&w, original.c_str());
    bai_json_write_string(&w, original.c_str());
    bai_json_end_object(&w);
    char* document = nullptr;
    ASSERT_EQ(bai_json_writer_finish(&w, &document), BAI_JSON_OK);
    GuardedText text(document);
    free(document);
    bai_json_value root, value;
    ASSERT_EQ(text.parse(&root), BAI_JSON_OK);
    ASSERT_EQ(bai_json_get(&root, original.c_str(), &value), BAI_JSON_OK) << original;
    EXPECT_EQ(readString(value), original);
  }
}

TEST(JsonReader, NeverReadsPastTheGivenLength) {
  bai_json_value root;
  std::int64_t number = 0;
  const std::string text = "[1] and garbage";
  EXPECT_EQ(bai_json_parse(text.data(), 3, &root), BAI_JSON_OK);
  EXPECT_EQ(bai_json_parse(text.data(), 4, &root), BAI_JSON_OK) << "trailing space is allowed";
  EXPECT_EQ(bai_json_parse(text.data(), 5, &root), BAI_JSON_ERR_SYNTAX);
  GuardedText digits("12345");
  ASSERT_EQ(digits.parse(&root), BAI_JSON_OK);
  ASSERT_EQ(bai_json_read_int(&root, &number), BAI_JSON_OK);
  EXPECT_EQ(number, 12345);
}

TEST(JsonReader, RefusesEveryTruncationOfADocument) {
  const std::string whole = R"({"a": [1, -2.5e+3, true, false, null, "x\u00e9\ud83d\ude00\n"], "b": {"caf)" "\xc3\xa9 \xf0\x9f\x98\x80\": 0}}";
  ASSERT_EQ(parseStatus(whole), BAI_JSON_OK);
  for (std::size_t n = 0; n < whole.size(); ++n) {
    EXPECT_EQ(parseStatus(whole.substr(0, n)), BAI_JSON_ERR_SYNTAX) << whole.substr(0, n);
  }
}

TEST(JsonReader, RefusesBadEscapes) {
  for (const char* bad : {R"("\x")", R"("\u12")", R"("\uZZZZ")", R"("\ud800")", R"("\udc00")", R"("\ud800\u0041")",
                          R"("\ud800\ud800")", R"("\ud800x")", R"("\)", R"("\u")", "\"\\\0\""}) {
    EXPECT_EQ(parseStatus(bad), BAI_JSON_ERR_SYNTAX) << bad;
  }
}

TEST(JsonReader, RefusesInvalidUtf8AndRawControlCharacters) {
  for (const char* bad : {"\"\xc0\x80\"", "\"\x80\"", "\"\xed\xa0\x80\"", "\"\xe6\x97\"", "\"\xf4\x90\x80\x80\"",
                          "\"\xff\"", "\"\xe0\x80\xaf\"", "\"tab\there\"", "\"line\nbreak\""}) {
    EXPECT_EQ(parseStatus(bad), BAI_JSON_ERR_SYNTAX) << bad;
  }
  EXPECT_EQ(parseStatus(std::string("\"nul\0\"", 6)), BAI_JSON_ERR_SYNTAX);
}

TEST(JsonReader, RefusesWhatIsNotOneDocument) {
  for (const char* bad : {"", "   ", "{", "}", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}", "{\"a\" 1}", "{a: 1}", "{\"a\":1,}",
                          "[1 2]", "01", "-", "1.", "1e", "1e+", "+1", ".5", "tru", "nul", "falsey", "[1]]", "1 2",
                          "'x'", "NaN", "[\"a\":1]", "{\"a\":1 \"b\":2}"}) {
    EXPECT_EQ(parseStatus(bad), BAI_JSON_ERR_SYNTAX) << bad;
  }
  bai_json_value root, member;
  ASSERT_EQ(bai_json_parse("[1", 2, &root), BAI_JSON_ERR_SYNTAX);
  EXPECT_EQ(root.text, nullptr) << "a failed parse leaves a view of nothing";
  EXPECT_EQ(root.length, 0u);
  EXPECT_EQ(bai_json_get(&root, "a", &member), BAI_JSON_ERR_TYPE);
  EXPECT_EQ(member.text, nullptr);
  for (const char* good : {" 0 ", "-0.0e-0", "\"\"", "[]", "{}", "\t\r\n[ ]\n", "1E5", "[[],{}]"}) {
    EXPECT_EQ(parseStatus(good), BAI_JSON_OK) << good;
  }
}

TEST(JsonReader, BoundsNesting) {
  const auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_EQ(parseStatus(nested(BAI_JSON_MAX_DEPTH)), BAI_JSON_OK);
  EXPECT_EQ(parseStatus(nested(BAI_JSON_MAX_DEPTH + 1)), BAI_JSON_ERR_DEPTH);
  EXPECT_EQ(parseStatus(std::string(1000000, '[')), BAI_JSON_ERR_DEPTH) << "a million brackets, no stack overflow";
  EXPECT_EQ(parseStatus(std::string(1000000, '{')), BAI_JSON_ERR_SYNTAX) << "an object needs a key first";
  std::string objects;
  for (int i = 0; i <= BAI_JSON_MAX_DEPTH; ++i) objects += "{\"k\":";
  EXPECT_EQ(parseStatus(objects + "1" + std::string(BAI_JSON_MAX_DEPTH + 1, '}')), BAI_JSON_ERR_DEPTH);
}

}  // namespace
