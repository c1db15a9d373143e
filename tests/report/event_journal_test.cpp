#include "report/event_journal.hpp"
#include "report_test_util.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <thread>

namespace bai::core {
namespace {

using test::exitedEvent;
using test::TempDir;

EventJournal openJournal(const std::filesystem::path& dir) {
  auto journal = EventJournal::open(dir);
  if (!journal) throw std::runtime_error(journal.error().message);
  return std::move(*journal);
}

std::uintmax_t journalSize(const std::filesystem::path& dir) {
  return std::filesystem::file_size(dir / EventJournal::kJournalFile);
}

std::vector<std::uint64_t> seqs(const std::vector<protocol::SessionEvent>& events) {
  std::vector<std::uint64_t> out;
  for (const auto& event : events) out.push_back(event.seq);
  return out;
}

TEST(EventJournal, AppendAssignsIncreasingSeqAndKeepsEventsInOrder) {
  TempDir dir;
  auto journal = openJournal(dir.path());
  for (int i = 0; i < 3; ++i) {
    auto appended = journal.append(exitedEvent("s" + std::to_string(i), i));
    ASSERT_TRUE(appended.ok()) << appended.error().message;
    EXPECT_EQ(appended->seq, static_cast<std::uint64_t>(i + 1));
  }
  EXPECT_EQ(seqs(journal.unacked(10)), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(seqs(journal.unacked(2)), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(journal.lastSeq(), 3u);
  EXPECT_EQ(journal.unackedCount(), 3u);
}

TEST(EventJournal, ReopenKeepsUnackedEventsAndTheSeqCounter) {
  TempDir dir;
  {
    auto journal = openJournal(dir.path());
    ASSERT_TRUE(journal.append(exitedEvent("s1", 0)).ok());
    ASSERT_TRUE(journal.append(exitedEvent("s2", 7)).ok());
    protocol::SessionEvent failed;
    failed.sessionId = "s3";
    failed.kind = protocol::EventKind::Failed;
    failed.reason = "command not found";
    ASSERT_TRUE(journal.append(failed).ok());
    ASSERT_TRUE(journal.acknowledge(1).ok());
  }
  auto journal = openJournal(dir.path());
  const auto events = journal.unacked(10);
  ASSERT_EQ(seqs(events), (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(events[0].exitCode, 7);
  EXPECT_EQ(events[1].kind, protocol::EventKind::Failed);
  EXPECT_EQ(events[1].reason, "command not found");
  EXPECT_EQ(journal.ackedThrough(), 1u);
  EXPECT_EQ(journal.append(exitedEvent("s4", 0))->seq, 4u);
}

TEST(EventJournal, SeqStaysMonotonicWhenEverythingWasAcknowledgedAndCompacted) {
  TempDir dir;
  {
    auto journal = openJournal(dir.path());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(journal.append(exitedEvent("s", 0)).ok());
    ASSERT_TRUE(journal.acknowledge(5).ok());
    EXPECT_EQ(journalSize(dir.path()), 0u) << "a fully acknowledged journal is emptied";
  }
  auto journal = openJournal(dir.path());
  EXPECT_EQ(journal.unackedCount(), 0u);
  EXPECT_EQ(journal.append(exitedEvent("s", 0))->seq, 6u);
}

TEST(EventJournal, TornLastLineIsIgnoredAndCutOffOnReopen) {
  TempDir dir;
  {
    auto journal = openJournal(dir.path());
    ASSERT_TRUE(journal.append(exitedEvent("s1", 0)).ok());
    ASSERT_TRUE(journal.append(exitedEvent("s2", 0)).ok());
  }
  const auto intactSize = journalSize(dir.path());
  {
    std::ofstream torn(dir.path() / EventJournal::kJournalFile, std::ios::app | std::ios::binary);
    torn << R"({"agent_id":"","events":[{"at_ms":1,"kind":"exi)";  // a crash in the middle of a write
  }
  {
    auto journal = openJournal(dir.path());
    EXPECT_EQ(seqs(journal.unacked(10)), (std::vector<std::uint64_t>{1, 2}));
    EXPECT_EQ(journalSize(dir.path()), intactSize);
    EXPECT_EQ(journal.append(exitedEvent("s3", 0))->seq, 3u);
  }
  auto journal = openJournal(dir.path());
  EXPECT_EQ(seqs(journal.unacked(10)), (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST(EventJournal, UnparsableLastLineWithNewlineIsTreatedAsTorn) {
  TempDir dir;
  {
    auto journal = openJournal(dir.path());
    ASSERT_TRUE(journal.append(exitedEvent("s1", 0)).ok());
  }
  {
    std::ofstream torn(dir.path() / EventJournal::kJournalFile, std::ios::app | std::ios::binary);
    torn << std::string(40, '\0') << "\n";  // what a crash can leave of a block on some filesystems
  }
  auto journal = openJournal(dir.path());
  EXPECT_EQ(seqs(journal.unacked(10)), (std::vector<std::uint64_t>{1}));
}

TEST(EventJournal, CorruptLineInTheMiddleIsRefusedNotGuessedAround) {
  TempDir dir;
  {
    auto journal = openJournal(dir.path());
    ASSERT_TRUE(journal.append(exitedEvent("s1", 0)).ok());
  }
  std::string good;
  {
    std::ifstream in(dir.path() / EventJournal::kJournalFile, std::ios::binary);
    std::getline(in, good);
  }
  {
    std::ofstream out(dir.path() / EventJournal::kJournalFile, std::ios::trunc | std::ios::binary);
    out << "garbage\n" << good << "\n";
  }
  auto journal = EventJournal::open(dir.path());
  ASSERT_FALSE(journal.ok());
  EXPECT_NE(journal.error().message.find("line 1"), std::string::npos) << journal.error().message;
}

TEST(EventJournal, AcknowledgeIsMonotonicAndRefusesUnwrittenSeqs) {
  TempDir dir;
  auto journal = openJournal(dir.path());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(journal.append(exitedEvent("s", 0)).ok());
  ASSERT_TRUE(journal.acknowledge(2).ok());
  ASSERT_TRUE(journal.acknowledge(1).ok()) << "an old acknowledgement is a no-op";
  EXPECT_EQ(journal.ackedThrough(), 2u);
  EXPECT_EQ(seqs(journal.unacked(10)), (std::vector<std::uint64_t>{3}));
  auto beyond = journal.acknowledge(4);
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.error().code, ErrorCode::OutOfRange);
}

TEST(EventJournal, PartialAcknowledgementKeepsTheFileUntilEverythingIsAcked) {
  TempDir dir;
  auto journal = openJournal(dir.path());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(journal.append(exitedEvent("s", 0)).ok());
  const auto fullSize = journalSize(dir.path());
  ASSERT_TRUE(journal.acknowledge(3).ok());
  EXPECT_EQ(journalSize(dir.path()), fullSize) << "a few acked lines are not worth a rewrite";
  ASSERT_TRUE(journal.acknowledge(4).ok());
  EXPECT_EQ(journalSize(dir.path()), 0u);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "events.ack.tmp"));
}

TEST(EventJournal, ManyAckedLinesAheadOfUnackedOnesAreCompactedAway) {
  TempDir dir(test::memoryBackedBase());
  auto journal = openJournal(dir.path());
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(journal.append(exitedEvent("s" + std::to_string(i), 0)).ok());
  const auto fullSize = journalSize(dir.path());
  ASSERT_TRUE(journal.acknowledge(2998).ok());
  EXPECT_LT(journalSize(dir.path()), fullSize / 100) << "a manager always lagging by a few must not grow the file";
  EXPECT_EQ(journal.append(exitedEvent("after", 0))->seq, 3001u);

  auto reopened = openJournal(dir.path());
  EXPECT_EQ(seqs(reopened.unacked(10)), (std::vector<std::uint64_t>{2999, 3000, 3001}));
}

TEST(EventJournal, TenThousandAppendsSurviveReopenAndCompactToNothing) {
  TempDir dir(test::memoryBackedBase());
  constexpr int kEvents = 10'000;
  const auto start = std::chrono::steady_clock::now();
  {
    auto journal = openJournal(dir.path());
    for (int i = 0; i < kEvents; ++i) {
      auto appended = journal.append(exitedEvent("session-" + std::to_string(i), i % 256));
      ASSERT_TRUE(appended.ok()) << appended.error().message;
    }
  }
  const double appendMillis = test::millisSince(start, std::chrono::steady_clock::now());
  auto journal = openJournal(dir.path());
  const auto events = journal.unacked(kEvents + 1);
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_EQ(events[i].seq, static_cast<std::uint64_t>(i + 1));
    ASSERT_EQ(events[i].sessionId, "session-" + std::to_string(i));
  }
  ASSERT_TRUE(journal.acknowledge(kEvents).ok());
  EXPECT_EQ(journalSize(dir.path()), 0u);
  std::cout << "[figure] 10000 journal appends on " << dir.path().parent_path() << ": " << appendMillis << " ms ("
            << appendMillis * 1000 / kEvents << " us each)\n";
}

TEST(EventJournal, AppendLatencyOnTheRealDisk) {
  TempDir dir;  // a real filesystem: each append waits for fdatasync
  auto journal = openJournal(dir.path());
  std::vector<double> millis;
  for (int i = 0; i < 100; ++i) {
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(journal.append(exitedEvent("s", 0)).ok());
    millis.push_back(test::millisSince(start, std::chrono::steady_clock::now()));
  }
  std::cout << "[figure] durable append on " << dir.path().parent_path() << ": p50 " << test::percentile(millis, 0.5)
            << " ms, p99 " << test::percentile(millis, 0.99) << " ms\n";
}

TEST(EventJournal, ConcurrentAppendsAndAcknowledgementsLoseNothing) {
  TempDir dir(test::memoryBackedBase());
  auto journal = openJournal(dir.path());
  constexpr int kPerThread = 500;
  auto appendMany = [&] {
    for (int i = 0; i < kPerThread; ++i) ASSERT_TRUE(journal.append(exitedEvent("s", 0)).ok());
  };
  std::thread first(appendMany);
  std::thread second(appendMany);
  std::uint64_t acked = 0;
  while (acked < 2 * kPerThread) {
    const auto pending = journal.unacked(50);
    if (pending.empty()) {
      std::this_thread::yield();
      continue;
    }
    ASSERT_EQ(pending.front().seq, acked + 1) << "nothing skipped";
    acked = pending.back().seq;
    ASSERT_TRUE(journal.acknowledge(acked).ok());
  }
  first.join();
  second.join();
  EXPECT_EQ(journal.lastSeq(), 2u * kPerThread);
  EXPECT_EQ(journal.unackedCount(), 0u);
}

}  // namespace
}  // namespace bai::core
