// What the libFuzzer harnesses share: the input as text and as lines, and properties
// that stop the run. A parser of untrusted input may refuse anything, but must never
// crash, throw (errors are values) or break its own round trip.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace bai::fuzz {

inline std::string_view textOf(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// "a\nb\n" -> {"a", "b", ""}: the harnesses whose input has several fields take one a line.
inline std::vector<std::string_view> splitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return lines;
    start = end + 1;
  }
}

// A broken property is a finding: libFuzzer saves the input as a crash artifact.
inline void require(bool holds, const char* property, std::string_view detail = {}) {
  if (holds) return;
  std::fprintf(stderr, "fuzz property broken: %s\n  %.*s\n", property, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

}  // namespace bai::fuzz
