#include "bearer_token.hpp"

#include <openssl/crypto.h>

#include <string>

namespace bai {

bool bearerTokenMatches(std::string_view authorization, std::string_view token) {
  const std::string expected = "Bearer " + std::string(token);
  return authorization.size() == expected.size() &&
         CRYPTO_memcmp(authorization.data(), expected.data(), expected.size()) == 0;
}

}  // namespace bai
