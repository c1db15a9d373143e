// How `bai vfolder upload|download` shows a transfer: a bar redrawn on a terminal
// (bytes, rate, ETA; at most 10 times a second), or one summary line when not a tty.
#pragma once

#include <bai/vfolder_transfer.hpp>

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace bai::cli {

// "0 B", "512 B", "1.5 KiB", "12.3 MiB", "2.00 GiB".
std::string formatBytes(std::uint64_t bytes);
// bytes per second as "12.3 MiB/s".
std::string formatRate(double bytesPerSecond);
// "3s", "1m05s", "2h03m"; "--" when unknown (no rate yet).
std::string formatEta(double seconds);

// "1.5 GiB in 12.3 s, 124.9 MiB/s (3 files)"
std::string transferSummaryLine(std::uint64_t bytes, double seconds, std::size_t files);

class ProgressDisplay {
 public:
  using Clock = std::chrono::steady_clock;
  // `live`: stderr is a terminal (a redrawn bar); otherwise nothing until finish().
  ProgressDisplay(std::ostream& out, bool live, Clock::time_point start = Clock::now());

  // At most one redraw per 100 ms (and the final state always).
  void update(const client::TransferProgress& progress, Clock::time_point now = Clock::now());
  // Clears the bar; prints the summary line.
  void finish(const client::TransferSummary& summary, Clock::time_point now = Clock::now());

  // The bar's text for a state (for tests): " 45% [#########...] 1.2 MiB/2.6 MiB 3.1 MiB/s ETA 1s 1/3 files"
  static std::string barText(const client::TransferProgress& progress, double seconds);

 private:
  std::ostream& out_;
  bool live_;
  Clock::time_point start_;
  Clock::time_point lastDraw_{};
  bool drawn_ = false;
};

}  // namespace bai::cli
