#include "nonce_cache.hpp"

namespace bai::manager {

NonceCache::NonceCache(std::chrono::seconds retention, std::size_t capacity)
    : retention_(retention), capacity_(capacity) {}

NonceStatus NonceCache::remember(std::string_view accessKey, std::string_view nonce,
                                 std::chrono::system_clock::time_point seenAt) {
  // Length-prefixed so that no two (key, nonce) pairs share a string.
  std::string key = std::to_string(accessKey.size()) + ':';
  key += accessKey;
  key += nonce;

  const std::lock_guard lock(mutex_);
  pruneLocked(seenAt);
  if (keys_.contains(key)) return NonceStatus::Replayed;
  // Refuse rather than forget the oldest: a forgotten nonce whose request date is still
  // inside the window could be replayed.
  if (keys_.size() >= capacity_) return NonceStatus::CacheFull;
  const auto inserted = keys_.insert(std::move(key)).first;
  byAge_.push_back(Seen{seenAt, &*inserted});
  return NonceStatus::Fresh;
}

std::size_t NonceCache::size() const {
  const std::lock_guard lock(mutex_);
  return keys_.size();
}

// If the clock steps back, newer entries sit behind an older front one and are kept
// longer than needed: the safe direction.
void NonceCache::pruneLocked(std::chrono::system_clock::time_point now) {
  while (!byAge_.empty() && byAge_.front().at + retention_ <= now) {
    keys_.erase(keys_.find(*byAge_.front().key));
    byAge_.pop_front();
  }
}

}  // namespace bai::manager
