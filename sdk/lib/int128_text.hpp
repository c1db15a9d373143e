// Decimal text of 128-bit integers (the standard library has no to_chars for them).
#pragma once

#include <string>

namespace bai::detail {

inline std::string unsignedToString(unsigned __int128 value) {
  if (value == 0) return "0";
  char buffer[40];
  int pos = sizeof(buffer);
  while (value != 0) {
    buffer[--pos] = static_cast<char>('0' + static_cast<int>(value % 10));
    value /= 10;
  }
  return std::string(buffer + pos, sizeof(buffer) - pos);
}

inline unsigned __int128 magnitude(__int128 value) {
  return value < 0 ? static_cast<unsigned __int128>(0) - static_cast<unsigned __int128>(value)
                   : static_cast<unsigned __int128>(value);
}

}  // namespace bai::detail
