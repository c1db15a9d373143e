// New API keypairs for bai-manager's users.
#pragma once

#include <string>

namespace bai::manager {

struct Keypair {
  std::string accessKey;  // "AKBAI" + 15 of [A-Z0-9]: ~77 random bits, an identifier
  std::string secretKey;  // 40 of [A-Za-z0-9_-] (base64url): 240 random bits
};

// From OpenSSL RAND_bytes, without modulo bias. Throws std::runtime_error if the system
// random number generator fails, which a working Linux never does.
Keypair generateKeypair();

}  // namespace bai::manager
