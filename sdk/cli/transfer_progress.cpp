#include "transfer_progress.hpp"

#include <cstdio>
#include <ostream>

namespace bai::cli {

std::string formatBytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, value < 10 ? "%.2f %s" : value < 100 ? "%.1f %s" : "%.0f %s", value, kUnits[unit]);
  return text;
}

std::string formatRate(double bytesPerSecond) {
  if (!(bytesPerSecond > 0)) return "0 B/s";
  return formatBytes(static_cast<std::uint64_t>(bytesPerSecond)) + "/s";
}

std::string formatEta(double seconds) {
  if (!(seconds >= 0) || seconds > 359999) return "--";
  const auto total = static_cast<long>(seconds + 0.5);
  char text[32];
  if (total < 60) {
    std::snprintf(text, sizeof text, "%lds", total);
  } else if (total < 3600) {
    std::snprintf(text, sizeof text, "%ldm%02lds", total / 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%ldh%02ldm", total / 3600, total % 3600 / 60);
  }
  return text;
}

std::string transferSummaryLine(std::uint64_t bytes, double seconds, std::size_t files) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f s, %.1f MiB/s", seconds,
                seconds > 0 ? static_cast<double>(bytes) / (1 << 20) / seconds : 0.0);
  return formatBytes(bytes) + " in " + text + " (" + std::to_string(files) + (files == 1 ? " file)" : " files)");
}

std::string ProgressDisplay::barText(const client::TransferProgress& progress, double seconds) {
  constexpr int kWidth = 20;
  const double fraction =
      progress.bytesTotal == 0 ? 1.0 : static_cast<double>(progress.bytesDone) / static_cast<double>(progress.bytesTotal);
  const int filled = static_cast<int>(fraction * kWidth);
  const double rate = seconds > 0 ? static_cast<double>(progress.bytesDone) / seconds : 0;
  const double eta = rate > 0 ? static_cast<double>(progress.bytesTotal - std::min(progress.bytesDone, progress.bytesTotal)) / rate : -1;
  char percent[8];
  std::snprintf(percent, sizeof percent, "%3d%%", static_cast<int>(fraction * 100));
  return std::string(percent) + " [" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] " +
         formatBytes(progress.bytesDone) + "/" + formatBytes(progress.bytesTotal) + " " + formatRate(rate) + " ETA " +
         formatEta(eta) + " " + std::to_string(progress.filesDone) + "/" + std::to_string(progress.filesTotal) + " files";
}

ProgressDisplay::ProgressDisplay(std::ostream& out, bool live, Clock::time_point start)
    : out_(out), live_(live), start_(start) {}

void ProgressDisplay::update(const client::TransferProgress& progress, Clock::time_point now) {
  const bool last = progress.bytesDone >= progress.bytesTotal && progress.filesDone >= progress.filesTotal;
  if (!live_ || (drawn_ && now - lastDraw_ < std::chrono::milliseconds(100) && !last)) return;
  lastDraw_ = now;
  drawn_ = true;
  out_ << "\r\033[K" << barText(progress, std::chrono::duration<double>(now - start_).count()) << std::flush;
}

void ProgressDisplay::finish(const client::TransferSummary& summary, Clock::time_point now) {
  if (drawn_) out_ << "\r\033[K";
  out_ << transferSummaryLine(summary.bytes, std::chrono::duration<double>(now - start_).count(), summary.files) << "\n";
  for (const std::string& skipped : summary.skipped) out_ << "skipped: " << skipped << "\n";
  out_ << std::flush;
}

}  // namespace bai::cli
