#include "nonce_cache.hpp"

namespace bai::manager {

NonceCache::NonceCache(std::size_t capacity) : capacity_(capacity) {}

std::string NonceCache::keyOf(std::string_view accessKey, std::string_view nonce) {
  std::string key = std::to_string(accessKey.size()) + ':';
  key += accessKey;
  key += nonce;
  return key;
}

NonceStatus NonceCache::remember(const std::string& key, std::chrono::system_clock::time_point expiresAt,
                                 std::chrono::system_clock::time_point now) {
  const std::lock_guard lock(mutex_);
  pruneLocked(now);
  if (keys_.contains(key)) return NonceStatus::Replayed;
  // Refuse rather than forget the soonest to expire: a forgotten nonce whose request date
  // is still inside the window could be replayed.
  if (keys_.size() >= capacity_) return NonceStatus::CacheFull;
  insertLocked(key, expiresAt);
  return NonceStatus::Fresh;
}

void NonceCache::restore(const std::vector<RememberedNonce>& entries, std::chrono::system_clock::time_point now) {
  const std::lock_guard lock(mutex_);
  for (const auto& entry : entries) {
    if (entry.expiresAt >= now && !keys_.contains(entry.key)) insertLocked(entry.key, entry.expiresAt);
  }
}

std::size_t NonceCache::size() const {
  const std::lock_guard lock(mutex_);
  return keys_.size();
}

void NonceCache::insertLocked(std::string key, std::chrono::system_clock::time_point expiresAt) {
  const auto inserted = keys_.insert(std::move(key)).first;
  byExpiry_.push(Expiry{expiresAt, &*inserted});
}

// Kept up to and including the instant of expiry: a date exactly one window old is
// still accepted. If the clock steps back, entries are kept longer: the safe direction.
void NonceCache::pruneLocked(std::chrono::system_clock::time_point now) {
  while (!byExpiry_.empty() && byExpiry_.top().at < now) {
    keys_.erase(keys_.find(*byExpiry_.top().key));
    byExpiry_.pop();
  }
}

}  // namespace bai::manager
