// Test support: a text a parser must refuse, with the error it must give, and the check.
#pragma once

#include <bai/result.hpp>

#include <gtest/gtest.h>

#include <string>

namespace bai::test {

struct RejectedText {
  const char* text;
  ErrorCode code;
  const char* mentions;  // a piece of the error message
};

// Expects parse(bad.text) to fail with bad.code and a message that mentions bad.mentions;
// `shown` prints what it parsed to when it did not fail.
template <class Parse, class Show>
void expectRejected(const RejectedText& bad, Parse parse, Show shown) {
  auto parsed = parse(bad.text);
  ASSERT_FALSE(parsed.ok()) << bad.text << " parsed as " << shown(*parsed);
  EXPECT_EQ(parsed.error().code, bad.code) << bad.text;
  EXPECT_NE(parsed.error().message.find(bad.mentions), std::string::npos) << parsed.error().message;
}

}  // namespace bai::test
