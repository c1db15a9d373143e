// Remembers the request nonces the manager has accepted, so that a captured request
// cannot be replayed while its date is still inside the accepted window.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

namespace bai::manager {

enum class NonceStatus {
  Fresh,      // not seen before; now remembered
  Replayed,   // seen with the same access key within the retention
  CacheFull,  // at the cap: refused, not remembered (the server is overloaded, not the client wrong)
};

// Thread-safe. An entry is forgotten `retention` after it was seen; expired entries are
// pruned oldest-first on each call, so pruning costs O(1) amortized.
class NonceCache {
 public:
  // ~150 bytes an entry: about 150 MiB at the cap, reached only by ~1700 valid requests/s
  // sustained over a 10-minute retention.
  static constexpr std::size_t kDefaultCapacity = 1'000'000;

  explicit NonceCache(std::chrono::seconds retention, std::size_t capacity = kDefaultCapacity);

  NonceStatus remember(std::string_view accessKey, std::string_view nonce,
                       std::chrono::system_clock::time_point seenAt);
  std::size_t size() const;

 private:
  struct Seen {
    std::chrono::system_clock::time_point at;
    const std::string* key;  // into keys_: element pointers survive rehashing
  };

  void pruneLocked(std::chrono::system_clock::time_point now);

  const std::chrono::seconds retention_;
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<Seen> byAge_;  // in insertion order, i.e. oldest first while the clock runs forward
  std::unordered_set<std::string> keys_;
};

}  // namespace bai::manager
