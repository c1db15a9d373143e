// bai::parseJson, the daemons' one parser for JSON they did not write (and the internal
// helper that libbai, libbai-client and the plugins share): nesting bounded at 64
// levels, numbers refused when a double cannot hold them exactly.
#include "parse_json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace bai {
namespace {

std::string nestedArrays(std::size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

std::string nestedObjects(std::size_t levels) {
  std::string text;
  for (std::size_t i = 0; i < levels; ++i) text += R"({"a":)";
  return text + "1" + std::string(levels, '}');
}

std::string refusal(std::string_view text) {
  auto parsed = parseJson(text);
  if (parsed) return "accepted";
  EXPECT_EQ(parsed.error().code, ErrorCode::InvalidArgument);
  return parsed.error().message;
}

TEST(ParseJson, SixtyFourLevelsAreAccepted) {
  auto arrays = parseJson(nestedArrays(64));
  ASSERT_TRUE(arrays) << arrays.error().message;
  EXPECT_EQ(arrays->dump(), nestedArrays(64));
  auto objects = parseJson(nestedObjects(64));
  ASSERT_TRUE(objects) << objects.error().message;
  EXPECT_EQ(objects->dump(), nestedObjects(64));
}

TEST(ParseJson, SixtyFiveLevelsAreRefused) {
  EXPECT_EQ(refusal(nestedArrays(65)), "JSON nested deeper than 64 levels");
  EXPECT_EQ(refusal(nestedObjects(65)), "JSON nested deeper than 64 levels");
  EXPECT_EQ(refusal(R"({"a":[1,{"b":)" + nestedArrays(63) + "}]}"), "JSON nested deeper than 64 levels");
}

TEST(ParseJson, HundredFiftyThousandLevelsAreRefusedWithoutACrash) {
  EXPECT_EQ(refusal(nestedArrays(150'000)), "JSON nested deeper than 64 levels");
  EXPECT_EQ(refusal(nestedObjects(150'000)), "JSON nested deeper than 64 levels");
  EXPECT_EQ(refusal(std::string(150'000, '[')), "JSON nested deeper than 64 levels") << "unclosed, too";
}

TEST(ParseJson, BuildsTheSameTreeAsNlohmann) {
  const std::string text = R"({"s":"x\u00e9","n":null,"t":true,"f":false,"i":-7,"u":18446744073709551615,
      "d":0.5,"e":1e3,"a":[1,[2,{}],[]],"o":{"k":{"l":"m"}},"dup":1,"dup":2})";
  auto parsed = parseJson(text);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(*parsed, nlohmann::json::parse(text));
  EXPECT_TRUE((*parsed)["u"].is_number_unsigned());
  EXPECT_TRUE((*parsed)["i"].is_number_integer());
  EXPECT_EQ(parseJson("  7 ")->get<int>(), 7);
}

TEST(ParseJson, MalformedTextIsRefusedSayingWhere) {
  for (const char* text : {"", "{", "{not json", "[1,]", "{} {}", "\"\xff\"", "01"}) {
    const std::string why = refusal(text);
    EXPECT_EQ(why.rfind("malformed JSON: ", 0), 0u) << text << " -> " << why;
    EXPECT_LT(why.size(), 200u) << why;
  }
  EXPECT_LT(refusal("[\"" + std::string(100'000, 'x') + "\\q\"]").size(), 200u) << "a long token is not echoed whole";
  const std::string why = refusal("\"\xff\"");
  EXPECT_EQ(why.find_first_not_of(" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                                  "abcdefghijklmnopqrstuvwxyz{|}~"),
            std::string::npos)
      << "the error echoes input as printable ASCII only, so it can go into a JSON reply: " << why;
}

// 18446744073709551616 would become the double 18446744073709552000: refused, naming the
// field. Numbers a double holds exactly (as their shortest text says) pass unchanged.
TEST(ParseJson, NumbersADoubleCannotHoldAreRefusedNamingTheField) {
  EXPECT_EQ(refusal(R"({"resources":{"cpu":18446744073709551616}})"),
            "resources.cpu: the number 18446744073709551616 cannot be held exactly; send it as a string");
  EXPECT_EQ(refusal(R"({"a":[1,-9223372036854775809]})").rfind("a[1]: the number -9223372036854775809", 0), 0u);
  EXPECT_EQ(refusal("1e400"), "malformed JSON: number overflow parsing '1e400'");
  EXPECT_EQ(refusal("-1e400"), "malformed JSON: number overflow parsing '-1e400'");
  EXPECT_EQ(refusal("1e-400").rfind("the number 1e-400 cannot", 0), 0u);
  EXPECT_EQ(refusal("0.30000000000000001").rfind("the number 0.30000000000000001 cannot", 0), 0u);
  EXPECT_EQ(refusal("9007199254740993.0").rfind("the number 9007199254740993.0 cannot", 0), 0u);
  EXPECT_EQ(refusal("1." + std::string(400, '1')).find("..."), 51u) << "a long number is cut short";
  for (const char* exact : {"18446744073709551615", "-9223372036854775808", "18446744073709552000", "1.8446744073709552e19",
                            "0.1", "0.5", "-2.25", "1e3", "1E+3", "100e-2", "0.000001", "-0.0", "0e999999999999999999",
                            "123456.789", "9007199254740992"}) {
    EXPECT_EQ(refusal(exact), "accepted") << exact;
  }
}

}  // namespace
}  // namespace bai
