// The request verifier's nonce journal kept in the manager's store, so that a restarted
// manager still refuses requests it accepted before (auth/nonce_cache.hpp).
#pragma once

#include "auth/nonce_cache.hpp"
#include "store/store.hpp"

namespace bai::manager {

// Thread-safe: each call is one store transaction. `store` must outlive it.
class StoreNonceJournal final : public NonceJournal {
 public:
  explicit StoreNonceJournal(Store& store) : store_(store) {}

  Result<void> record(const RememberedNonce& nonce, std::chrono::system_clock::time_point now) override;
  Result<std::vector<RememberedNonce>> unexpired(std::chrono::system_clock::time_point now) override;

 private:
  Store& store_;
};

}  // namespace bai::manager
