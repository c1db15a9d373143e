#include "store_nonce_journal.hpp"

namespace bai::manager {
namespace {

std::int64_t millisOf(std::chrono::system_clock::time_point at) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
}

}  // namespace

// Expired rows go in the same transaction, a few at a time: the table holds only the
// requests of the last window.
Result<void> StoreNonceJournal::record(const RememberedNonce& nonce, std::chrono::system_clock::time_point now) {
  return store_.write([&](StoreTransaction& tx) -> Result<void> {
    if (auto pruned = tx.deleteRequestNoncesExpiredBefore(millisOf(now)); !pruned) return pruned;
    return tx.insertRequestNonce(nonce.key, millisOf(nonce.expiresAt));
  });
}

Result<std::vector<RememberedNonce>> StoreNonceJournal::unexpired(std::chrono::system_clock::time_point now) {
  std::vector<RememberedNonce> out;
  auto read = store_.read([&](StoreTransaction& tx) -> Result<void> {
    auto kept = tx.requestNonces(millisOf(now));
    if (!kept) return Failure{kept.error()};
    for (const auto& [key, expiresAtMillis] : *kept) {
      out.push_back({key, std::chrono::system_clock::time_point{std::chrono::milliseconds{expiresAtMillis}}});
    }
    return {};
  });
  if (!read) return Failure{read.error()};
  return out;
}

}  // namespace bai::manager
