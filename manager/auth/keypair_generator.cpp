#include "keypair_generator.hpp"

#include <openssl/rand.h>

#include <array>
#include <stdexcept>
#include <string_view>

namespace bai::manager {
namespace {

// Uniform over `alphabet`: bytes at or above the largest multiple of its size are
// drawn again, since `byte % size` would favour the first letters.
std::string randomString(std::string_view alphabet, std::size_t length) {
  const unsigned limit = 256 - 256 % alphabet.size();
  std::string text;
  text.reserve(length);
  std::array<unsigned char, 64> bytes{};
  while (text.size() < length) {
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
      throw std::runtime_error("RAND_bytes failed: cannot generate a keypair");
    }
    for (unsigned char byte : bytes) {
      if (byte < limit && text.size() < length) text += alphabet[byte % alphabet.size()];
    }
  }
  return text;
}

}  // namespace

Keypair generateKeypair() {
  static constexpr std::string_view kUpperAlphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  static constexpr std::string_view kBase64Url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  return Keypair{"AKBAI" + randomString(kUpperAlphanumeric, 15), randomString(kBase64Url, 40)};
}

}  // namespace bai::manager
