// The manager's side of request authentication: the verifier with a fake clock and key
// table, the nonce cache and the keypair generator.
#include "auth/keypair_generator.hpp"
#include "auth/nonce_cache.hpp"
#include "auth/request_verifier.hpp"

#include <bai/request_signing.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <cctype>
#include <set>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;
using bai::manager::KeyInfo;
using bai::manager::NonceCache;
using bai::manager::NonceJournal;
using bai::manager::RememberedNonce;
using bai::manager::NonceStatus;
using bai::manager::RequestVerifier;
namespace auth = bai::auth;

using Headers = std::map<std::string, std::string>;

const auth::SigningKey kUser{"AKBAIUSER0000000001", "user-secret-0123456789abcdefghijklmnopqr"};
const auth::SigningKey kAdmin{"AKBAIADMIN000000001", "admin-secret-0123456789abcdefghijklmnopq"};
const auth::SigningKey kInactive{"AKBAIGONE0000000001", "gone-secret-0123456789abcdefghijklmnopqr"};
const system_clock::time_point kStart = system_clock::time_point{1'795'884'000s};  // 2026-11-28T16:40:00Z

Headers lowerCaseNames(const Headers& headers) {
  Headers lower;
  for (const auto& [name, value] : headers) {
    std::string key = name;
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    lower[key] = value;
  }
  return lower;
}

class RequestVerifierTest : public ::testing::Test {
 protected:
  // Signs as a client whose clock reads `at` would; the server's clock reads now_.
  Headers sign(const auth::SigningKey& key, std::string_view method, std::string_view target, std::string_view body,
               system_clock::time_point at) {
    return lowerCaseNames(auth::signRequest(key, method, target, body, at));
  }
  Headers sign(const auth::SigningKey& key, std::string_view method, std::string_view target, std::string_view body) {
    return sign(key, method, target, body, now_);
  }

  // The error type, or "ok".
  std::string outcome(std::string_view method, std::string_view target, const Headers& headers,
                      std::string_view body) {
    const auto result = verifier_.verify(method, target, headers, body);
    return result.ok() ? "ok" : result.error().type;
  }

  system_clock::time_point now_ = kStart;
  RequestVerifier verifier_{
      [](const std::string& accessKey) -> std::optional<KeyInfo> {
        if (accessKey == kUser.accessKey) return KeyInfo{kUser.secretKey, false, true};
        if (accessKey == kAdmin.accessKey) return KeyInfo{kAdmin.secretKey, true, true};
        if (accessKey == kInactive.accessKey) return KeyInfo{kInactive.secretKey, false, false};
        return std::nullopt;
      },
      RequestVerifier::kDefaultWindow, [this] { return now_; }};
};

TEST_F(RequestVerifierTest, ValidRequestGivesThePrincipalAndRole) {
  const std::string body = R"({"image":"python:3.12"})";
  const auto user = verifier_.verify("POST", "/v1/sessions", sign(kUser, "POST", "/v1/sessions", body), body);
  ASSERT_TRUE(user.ok()) << user.error().type << ": " << user.error().detail;
  EXPECT_EQ(user->accessKey, kUser.accessKey);
  EXPECT_FALSE(user->admin);

  const auto admin = verifier_.verify("GET", "/v1/keypairs?all=1", sign(kAdmin, "GET", "/v1/keypairs?all=1", ""), "");
  ASSERT_TRUE(admin.ok()) << admin.error().type << ": " << admin.error().detail;
  EXPECT_EQ(admin->accessKey, kAdmin.accessKey);
  EXPECT_TRUE(admin->admin);
}

TEST_F(RequestVerifierTest, MissingHeadersAreMissingCredentials) {
  EXPECT_EQ(outcome("GET", "/v1/sessions", {}, ""), "missing-credentials");
  for (const char* name : {"authorization", "x-bai-date", "x-bai-nonce", "x-bai-content-sha256"}) {
    Headers headers = sign(kUser, "GET", "/v1/sessions", "");
    headers.erase(name);
    EXPECT_EQ(outcome("GET", "/v1/sessions", headers, ""), "missing-credentials") << name;
  }
}

TEST_F(RequestVerifierTest, MalformedAuthorizationIsRefused) {
  const Headers good = sign(kUser, "GET", "/v1/sessions", "");
  const std::string signature = good.at("authorization").substr(good.at("authorization").find("Signature=") + 10);
  for (const std::string& value : {
           std::string("Bearer abc"),
           std::string("BAI-HMAC-SHA256"),
           "BAI-HMAC-SHA256 Credential=" + kUser.accessKey,
           "BAI-HMAC-SHA256 Signature=" + signature,
           "BAI-HMAC-SHA256 Credential=, Signature=" + signature,
           "BAI-HMAC-SHA256 Credential=" + kUser.accessKey + ", Signature=xyz",
           "BAI-HMAC-SHA256 Credential=" + kUser.accessKey + ", Signature=" + signature.substr(1),
           "BAI-HMAC-SHA256 Credential=" + kUser.accessKey + ", Signature=" + signature + ", Signature=" + signature,
           "BAI-HMAC-SHA256 Credential=" + kUser.accessKey + ", Signature=" + signature + ", Extra=1",
           "HMAC Credential=" + kUser.accessKey + ", Signature=" + signature,
       }) {
    Headers headers = good;
    headers["authorization"] = value;
    EXPECT_EQ(outcome("GET", "/v1/sessions", headers, ""), "malformed-authorization") << value;
  }
  // Parameters in either order and with extra spaces are fine.
  Headers headers = good;
  headers["authorization"] = "BAI-HMAC-SHA256 Signature=" + signature + " ,  Credential=" + kUser.accessKey;
  EXPECT_EQ(outcome("GET", "/v1/sessions", headers, ""), "ok");
}

// Their details would echo bytes that are not UTF-8, which no JSON answer can carry.
TEST_F(RequestVerifierTest, HeadersThatAreNotAsciiAreRefusedWithoutEchoingThem) {
  Headers headers = sign(kUser, "GET", "/v1/sessions", "");
  Headers badKey = headers;
  badKey["authorization"] = "BAI-HMAC-SHA256 Credential=AK\xff, Signature=" + std::string(64, '0');
  EXPECT_EQ(outcome("GET", "/v1/sessions", badKey, ""), "malformed-authorization");
  Headers badDate = headers;
  badDate["x-bai-date"] = "2026-11-28T16:40:0\xffZ";
  const auto result = verifier_.verify("GET", "/v1/sessions", badDate, "");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().type, "bad-date");
  EXPECT_EQ(result.error().detail.find('\xff'), std::string::npos);
}

TEST_F(RequestVerifierTest, MalformedNonceOrBodyHashIsRefused) {
  Headers headers = sign(kUser, "GET", "/v1/sessions", "");
  headers["x-bai-nonce"] = "0123456789abcdef";  // 8 bytes: too short
  EXPECT_EQ(outcome("GET", "/v1/sessions", headers, ""), "bad-nonce");
  headers = sign(kUser, "GET", "/v1/sessions", "");
  headers["x-bai-content-sha256"] = "not-a-hash";
  EXPECT_EQ(outcome("GET", "/v1/sessions", headers, ""), "bad-body-hash");
}

TEST_F(RequestVerifierTest, UnknownAccessKeyIsRefused) {
  const auth::SigningKey stranger{"AKBAINOBODY00000001", kUser.secretKey};
  EXPECT_EQ(outcome("GET", "/v1/sessions", sign(stranger, "GET", "/v1/sessions", ""), ""), "unknown-access-key");
}

TEST_F(RequestVerifierTest, InactiveKeypairIsRefused) {
  EXPECT_EQ(outcome("GET", "/v1/sessions", sign(kInactive, "GET", "/v1/sessions", ""), ""), "inactive-keypair");
}

TEST_F(RequestVerifierTest, DateOutsideTheWindowIsClockSkew) {
  EXPECT_EQ(outcome("GET", "/v1/sessions", sign(kUser, "GET", "/v1/sessions", "", now_ - 6min), ""), "clock-skew");
  EXPECT_EQ(outcome("GET", "/v1/sessions", sign(kUser, "GET", "/v1/sessions", "", now_ + 6min), ""), "clock-skew");
  EXPECT_EQ(outcome("GET", "/v1/sessions", sign(kUser, "GET", "/v1/sessions", "", now_ - 4min), ""), "ok");
  EXPECT_EQ(outcome("GET", "/v1/sessions", sign(kUser, "GET", "/v1/sessions", "", now_ + 4min), ""), "ok");
  EXPECT_EQ(outcome("GET", "/v1/sessions", sign(kUser, "GET", "/v1/sessions", "", now_ - 5min), ""), "ok");
  EXPECT_EQ(outcome("GET", "/v1/sessions", sign(kUser, "GET", "/v1/sessions", "", now_ + 5min + 1s), ""),
            "clock-skew");
}

TEST_F(RequestVerifierTest, GarbageDateIsBadDate) {
  Headers headers = sign(kUser, "GET", "/v1/sessions", "");
  headers["x-bai-date"] = "Sat, 28 Nov 2026 16:40:00 GMT";
  const auto result = verifier_.verify("GET", "/v1/sessions", headers, "");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().type, "bad-date");
  EXPECT_NE(result.error().detail.find("RFC 3339"), std::string::npos) << result.error().detail;
}

TEST_F(RequestVerifierTest, BodyChangedAfterSigningIsRefused) {
  const Headers headers = sign(kUser, "POST", "/v1/sessions", R"({"image":"python:3.12"})");
  EXPECT_EQ(outcome("POST", "/v1/sessions", headers, R"({"image":"evil:latest"})"), "bad-body-hash");

  // Recomputing the body hash header does not help without the secret.
  Headers forged = headers;
  forged["x-bai-content-sha256"] = auth::sha256Hex(R"({"image":"evil:latest"})");
  EXPECT_EQ(outcome("POST", "/v1/sessions", forged, R"({"image":"evil:latest"})"), "bad-signature");
}

TEST_F(RequestVerifierTest, QueryChangedAfterSigningIsRefused) {
  const Headers headers = sign(kUser, "GET", "/v1/sessions?owner=me", "");
  EXPECT_EQ(outcome("GET", "/v1/sessions?owner=all", headers, ""), "bad-signature");
  EXPECT_EQ(outcome("GET", "/v1/sessions", headers, ""), "bad-signature");
}

TEST_F(RequestVerifierTest, MethodChangedAfterSigningIsRefused) {
  const Headers headers = sign(kUser, "GET", "/v1/sessions/42", "");
  EXPECT_EQ(outcome("DELETE", "/v1/sessions/42", headers, ""), "bad-signature");
  EXPECT_EQ(outcome("get", "/v1/sessions/42", headers, ""), "ok");  // methods compare upper-cased
}

TEST_F(RequestVerifierTest, WrongSecretIsRefusedWithoutLeakingTheExpectedSignature) {
  const auth::SigningKey wrong{kUser.accessKey, "not-the-secret-0123456789abcdefghijklmn"};
  const Headers headers = sign(wrong, "GET", "/v1/sessions", "");
  const auto result = verifier_.verify("GET", "/v1/sessions", headers, "");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().type, "bad-signature");

  const std::string expected = lowerCaseNames(auth::signRequest(kUser, "GET", "/v1/sessions", "", now_,
                                                                headers.at("x-bai-nonce")))
                                   .at("authorization");
  const std::string expectedSignature = expected.substr(expected.find("Signature=") + 10);
  EXPECT_EQ(result.error().detail.find(expectedSignature), std::string::npos);
  EXPECT_EQ(result.error().detail.find(kUser.secretKey), std::string::npos);
}

TEST_F(RequestVerifierTest, ExactReplayIsRefused) {
  const std::string body = R"({"image":"python:3.12"})";
  const Headers headers = sign(kUser, "POST", "/v1/sessions", body);
  EXPECT_EQ(outcome("POST", "/v1/sessions", headers, body), "ok");
  now_ += 30s;
  EXPECT_EQ(outcome("POST", "/v1/sessions", headers, body), "replayed-nonce");
}

TEST_F(RequestVerifierTest, SameNonceUnderAnotherAccessKeyIsAllowed) {
  const std::string nonce = "0123456789abcdef0123456789abcdef";
  const auto user = lowerCaseNames(auth::signRequest(kUser, "GET", "/v1/sessions", "", now_, nonce));
  const auto admin = lowerCaseNames(auth::signRequest(kAdmin, "GET", "/v1/sessions", "", now_, nonce));
  EXPECT_EQ(outcome("GET", "/v1/sessions", user, ""), "ok");
  EXPECT_EQ(outcome("GET", "/v1/sessions", admin, ""), "ok");
}

TEST_F(RequestVerifierTest, ForgedRequestDoesNotUseUpTheNonce) {
  const std::string nonce = "0123456789abcdef0123456789abcdef";
  const auth::SigningKey forger{kUser.accessKey, "forged-secret-0123456789abcdefghijklmno"};
  EXPECT_EQ(outcome("GET", "/v1/sessions", lowerCaseNames(auth::signRequest(forger, "GET", "/v1/sessions", "", now_,
                                                                            nonce)), ""),
            "bad-signature");
  EXPECT_EQ(outcome("GET", "/v1/sessions", lowerCaseNames(auth::signRequest(kUser, "GET", "/v1/sessions", "", now_,
                                                                            nonce)), ""),
            "ok");
}

TEST_F(RequestVerifierTest, NonceIsKeptExactlyAsLongAsItsDateIsAccepted) {
  const Headers headers = sign(kUser, "GET", "/v1/sessions", "");
  EXPECT_EQ(outcome("GET", "/v1/sessions", headers, ""), "ok");
  now_ += 5min;
  EXPECT_EQ(outcome("GET", "/v1/sessions", headers, ""), "replayed-nonce");
  now_ += 1ms;
  EXPECT_EQ(outcome("GET", "/v1/sessions", headers, ""), "clock-skew");
  // Its holder may use the nonce again once no request carrying it can pass.
  const auto again = lowerCaseNames(auth::signRequest(kUser, "GET", "/v1/sessions", "", now_, headers.at("x-bai-nonce")));
  EXPECT_EQ(outcome("GET", "/v1/sessions", again, ""), "ok");
}

// The date has whole seconds; the server's clock does not. 300.5 s is outside a 300 s
// window, although both truncate to 300.
TEST_F(RequestVerifierTest, SkewIsMeasuredToTheMillisecond) {
  now_ = kStart + 500ms;
  EXPECT_EQ(outcome("GET", "/v1/sessions", sign(kUser, "GET", "/v1/sessions", "", kStart + 301s), ""), "clock-skew");
  EXPECT_EQ(outcome("GET", "/v1/sessions", sign(kUser, "GET", "/v1/sessions", "", kStart - 300s), ""), "clock-skew");
  EXPECT_EQ(outcome("GET", "/v1/sessions", sign(kUser, "GET", "/v1/sessions", "", kStart + 300s), ""), "ok");
  const auto result = verifier_.verify("GET", "/v1/sessions", sign(kUser, "GET", "/v1/sessions", "", kStart + 301s), "");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().detail.find("300.500 s ahead"), std::string::npos) << result.error().detail;
}

// Seen at 0.9 s with a date 300 s ahead; at 600.9 s the date is 300.9 s old. Truncated,
// that was 300 s, inside the window, after the nonce had been forgotten at 600 s.
TEST_F(RequestVerifierTest, AReplayAtTheFarEdgeOfItsDateIsRefused) {
  now_ = kStart + 900ms;
  const Headers headers = sign(kUser, "POST", "/v1/sessions", "{}", kStart + 300s);
  EXPECT_EQ(outcome("POST", "/v1/sessions", headers, "{}"), "ok");
  now_ += 600s;
  EXPECT_NE(outcome("POST", "/v1/sessions", headers, "{}"), "ok");
}

TEST_F(RequestVerifierTest, FarFutureDateIsBadDateNotAWrappedClock) {
  Headers headers = sign(kUser, "GET", "/v1/sessions", "");
  // 2^64 ns after kStart: a nanosecond clock wraps back to about kStart.
  headers["x-bai-date"] = "2611-06-19T16:14:34Z";
  const std::string toSign =
      auth::stringToSign("GET", "/v1/sessions", headers["x-bai-date"], headers["x-bai-nonce"], auth::sha256Hex(""));
  headers["authorization"] = "BAI-HMAC-SHA256 Credential=" + kUser.accessKey +
                             ", Signature=" + auth::hmacSha256Hex(kUser.secretKey, toSign);
  EXPECT_EQ(outcome("GET", "/v1/sessions", headers, ""), "bad-date");
}

// An in-memory stand-in for the manager's store.
class FakeJournal final : public NonceJournal {
 public:
  bool broken = false;
  bai::Result<void> record(const RememberedNonce& nonce, system_clock::time_point) override {
    if (broken) return bai::fail(bai::ErrorCode::Internal, "disk I/O error");
    if (!kept.emplace(nonce.key, nonce.expiresAt).second) return bai::fail(bai::ErrorCode::Conflict, "kept");
    return {};
  }
  bai::Result<std::vector<RememberedNonce>> unexpired(system_clock::time_point now) override {
    std::vector<RememberedNonce> out;
    for (const auto& [key, expiresAt] : kept) {
      if (expiresAt >= now) out.push_back({key, expiresAt});
    }
    return out;
  }
  std::map<std::string, system_clock::time_point> kept;
};

TEST_F(RequestVerifierTest, ARestartedVerifierRemembersTheJournalsNonces) {
  FakeJournal journal;
  auto lookup = [](const std::string&) { return std::optional<KeyInfo>(KeyInfo{kUser.secretKey, false, true}); };
  const Headers headers = sign(kUser, "POST", "/v1/sessions", "{}");
  {
    RequestVerifier before(lookup, RequestVerifier::kDefaultWindow, [this] { return now_; }, 100, &journal);
    ASSERT_TRUE(before.restoreNonces().ok());
    EXPECT_TRUE(before.verify("POST", "/v1/sessions", headers, "{}").ok());
  }
  ASSERT_EQ(journal.kept.size(), 1u);
  EXPECT_EQ(journal.kept.begin()->second, now_ + 5min) << "kept while its date is accepted";
  now_ += 2min;
  RequestVerifier after(lookup, RequestVerifier::kDefaultWindow, [this] { return now_; }, 100, &journal);
  ASSERT_TRUE(after.restoreNonces().ok());
  const auto replay = after.verify("POST", "/v1/sessions", headers, "{}");
  ASSERT_FALSE(replay.ok());
  EXPECT_EQ(replay.error().type, "replayed-nonce");
  EXPECT_TRUE(after.verify("POST", "/v1/sessions", sign(kUser, "POST", "/v1/sessions", "{}"), "{}").ok());
}

TEST_F(RequestVerifierTest, ANonceThatCannotBeKeptRefusesTheRequest) {
  FakeJournal journal;
  journal.broken = true;
  RequestVerifier verifier([](const std::string&) { return std::optional<KeyInfo>(KeyInfo{kUser.secretKey, false, true}); },
                           RequestVerifier::kDefaultWindow, [this] { return now_; }, 100, &journal);
  const auto result = verifier.verify("GET", "/v1/sessions", sign(kUser, "GET", "/v1/sessions", ""), "");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().type, "nonce-not-saved");
  EXPECT_EQ(result.error().detail.find("disk"), std::string::npos) << "store details stay in the server";
}

TEST(RequestVerifierCap, FullNonceCacheRefusesRatherThanForgets) {
  system_clock::time_point now = kStart;
  RequestVerifier verifier([](const std::string&) { return KeyInfo{kUser.secretKey, false, true}; },
                           RequestVerifier::kDefaultWindow, [&] { return now; }, 2);
  auto verify = [&] {
    const auto headers = lowerCaseNames(auth::signRequest(kUser, "GET", "/v1/x", "", now));
    const auto result = verifier.verify("GET", "/v1/x", headers, "");
    return result.ok() ? std::string("ok") : result.error().type;
  };
  EXPECT_EQ(verify(), "ok");
  EXPECT_EQ(verify(), "ok");
  EXPECT_EQ(verify(), "nonce-cache-full");
  now += 10min;
  EXPECT_EQ(verify(), "ok");
}

TEST(NonceCache, RemembersPerAccessKey) {
  NonceCache cache;
  const auto until = kStart + 300s;
  EXPECT_EQ(cache.remember(NonceCache::keyOf("AK1", "n1"), until, kStart), NonceStatus::Fresh);
  EXPECT_EQ(cache.remember(NonceCache::keyOf("AK1", "n1"), until, kStart + 1s), NonceStatus::Replayed);
  EXPECT_EQ(cache.remember(NonceCache::keyOf("AK2", "n1"), until, kStart), NonceStatus::Fresh);
  EXPECT_EQ(cache.remember(NonceCache::keyOf("AK1", "n2"), until, kStart), NonceStatus::Fresh);
  // The key and nonce are kept apart: ("AK1", "1n") is not ("AK11", "n").
  EXPECT_EQ(cache.remember(NonceCache::keyOf("AK11", "n"), until, kStart), NonceStatus::Fresh);
  EXPECT_EQ(cache.remember(NonceCache::keyOf("AK1", "1n"), until, kStart), NonceStatus::Fresh);
  EXPECT_EQ(cache.size(), 5u);
}

TEST(NonceCache, PrunesEachEntryAfterItsOwnExpiry) {
  NonceCache cache;
  EXPECT_EQ(cache.remember("late", kStart + 600s, kStart), NonceStatus::Fresh);
  EXPECT_EQ(cache.remember("early", kStart + 300s, kStart + 1s), NonceStatus::Fresh);
  EXPECT_EQ(cache.remember("early", kStart + 300s, kStart + 300s), NonceStatus::Replayed) << "kept at its expiry";
  EXPECT_EQ(cache.remember("other", kStart + 900s, kStart + 300s + 1ms), NonceStatus::Fresh);  // prunes "early" only
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.remember("late", kStart + 600s, kStart + 599s), NonceStatus::Replayed);
  EXPECT_EQ(cache.remember("early", kStart + 900s, kStart + 599s), NonceStatus::Fresh);
}

TEST(NonceCache, RestoresOnlyUnexpiredEntries) {
  NonceCache cache;
  cache.restore({{"gone", kStart - 1s}, {"kept", kStart + 10s}}, kStart);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.remember("kept", kStart + 10s, kStart + 5s), NonceStatus::Replayed);
  EXPECT_EQ(cache.remember("gone", kStart + 10s, kStart + 5s), NonceStatus::Fresh);
}

TEST(NonceCache, RefusesNewNoncesAtItsCap) {
  NonceCache cache(3);
  for (const char* nonce : {"a", "b", "c"}) EXPECT_EQ(cache.remember(nonce, kStart + 600s, kStart), NonceStatus::Fresh);
  EXPECT_EQ(cache.remember("d", kStart + 600s, kStart + 1s), NonceStatus::CacheFull);
  EXPECT_EQ(cache.remember("a", kStart + 600s, kStart + 1s), NonceStatus::Replayed);  // still remembered
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.remember("d", kStart + 1200s, kStart + 601s), NonceStatus::Fresh);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(NonceCache, EachNonceIsFreshOnceAcrossThreads) {
  NonceCache cache;
  std::atomic<int> fresh{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (cache.remember(std::to_string(i), kStart + 1s, kStart) == NonceStatus::Fresh) ++fresh;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(fresh.load(), 1000);
}

TEST(KeypairGenerator, Format) {
  const auto keypair = bai::manager::generateKeypair();
  ASSERT_EQ(keypair.accessKey.size(), 20u);
  EXPECT_EQ(keypair.accessKey.substr(0, 5), "AKBAI");
  EXPECT_EQ(keypair.accessKey.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), std::string::npos);
  ASSERT_EQ(keypair.secretKey.size(), 40u);
  EXPECT_EQ(keypair.secretKey.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
}

TEST(KeypairGenerator, ThousandKeypairsAreDistinctAndUseTheWholeAlphabet) {
  std::set<std::string> accessKeys, secretKeys;
  std::set<char> accessLetters;
  for (int i = 0; i < 1000; ++i) {
    const auto keypair = bai::manager::generateKeypair();
    accessKeys.insert(keypair.accessKey);
    secretKeys.insert(keypair.secretKey);
    accessLetters.insert(keypair.accessKey.begin() + 5, keypair.accessKey.end());
  }
  EXPECT_EQ(accessKeys.size(), 1000u);
  EXPECT_EQ(secretKeys.size(), 1000u);
  EXPECT_EQ(accessLetters.size(), 36u);  // 15000 draws: missing a letter has probability ~1e-182
}

}  // namespace
