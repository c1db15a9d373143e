// Remembers the request nonces the manager has accepted, so that a captured request
// cannot be replayed while its date is still inside the accepted window.
#pragma once

#include <bai/result.hpp>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace bai::manager {

enum class NonceStatus {
  Fresh,      // not seen before; now remembered
  Replayed,   // seen with the same access key and not yet expired
  CacheFull,  // at the cap: refused, not remembered (the server is overloaded, not the client wrong)
};

struct RememberedNonce {
  std::string key;  // NonceCache::keyOf(access key, nonce)
  std::chrono::system_clock::time_point expiresAt;
};

// Thread-safe. Each entry is kept until its own expiry (the last instant its request's
// date is still accepted) has passed; expired entries are pruned soonest-first on each
// call, O(log n) each.
class NonceCache {
 public:
  // ~150 bytes an entry: about 150 MiB at the cap, reached only by ~3300 valid requests/s
  // sustained over a 5-minute window.
  static constexpr std::size_t kDefaultCapacity = 1'000'000;

  explicit NonceCache(std::size_t capacity = kDefaultCapacity);

  // Length-prefixed so that no two (key, nonce) pairs share a string; also the key a
  // NonceJournal keeps.
  static std::string keyOf(std::string_view accessKey, std::string_view nonce);

  NonceStatus remember(const std::string& key, std::chrono::system_clock::time_point expiresAt,
                       std::chrono::system_clock::time_point now);
  // Entries kept by an earlier run (from a NonceJournal), over the cap if need be.
  void restore(const std::vector<RememberedNonce>& entries, std::chrono::system_clock::time_point now);
  std::size_t size() const;

 private:
  struct Expiry {
    std::chrono::system_clock::time_point at;
    const std::string* key;  // into keys_: element pointers survive rehashing
    bool operator>(const Expiry& other) const { return at > other.at; }
  };

  void insertLocked(std::string key, std::chrono::system_clock::time_point expiresAt);
  void pruneLocked(std::chrono::system_clock::time_point now);

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::priority_queue<Expiry, std::vector<Expiry>, std::greater<>> byExpiry_;  // soonest first
  std::unordered_set<std::string> keys_;
};

// Where accepted nonces outlive the process (the manager's store), so that a restart
// opens no replay window. Implementations must be thread-safe.
class NonceJournal {
 public:
  virtual ~NonceJournal() = default;
  // Keeps `key` until `expiresAt` and drops entries expired before `now`; Conflict when
  // the key is already kept.
  virtual Result<void> record(const RememberedNonce& nonce, std::chrono::system_clock::time_point now) = 0;
  // The entries that have not expired at `now`.
  virtual Result<std::vector<RememberedNonce>> unexpired(std::chrono::system_clock::time_point now) = 0;
};

}  // namespace bai::manager
