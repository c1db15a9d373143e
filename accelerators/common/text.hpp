// Small text helpers shared by several plugins.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace bai::accel {

// "a,b,c": the form of the visibility variables (CUDA_VISIBLE_DEVICES and the like).
inline std::string joined(const std::vector<std::string>& items, std::string_view separator = ",") {
  std::string text;
  for (const std::string& item : items) text.append(text.empty() ? "" : separator).append(item);
  return text;
}

// The decimal text of a sum that may exceed 64 bits (bytes over many devices).
inline std::string decimal(unsigned __int128 value) {
  std::string text;
  do {
    text.insert(text.begin(), static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  } while (value != 0);
  return text;
}

}  // namespace bai::accel
