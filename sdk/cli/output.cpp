#include "output.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ostream>

namespace bai::cli {

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows_) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

std::string formatResources(const std::map<std::string, std::string>& resources,
                            const std::map<std::string, std::string>& types) {
  std::string out;
  for (const auto& [slot, amount] : resources) {
    std::string shown = amount;
    const auto type = types.find(slot);
    if (auto parsed = Quantity::parse(amount); parsed && type != types.end()) {
      shown = client::formatSlotAmount(type->second, *parsed);
    }
    out += (out.empty() ? "" : " ") + slot + "=" + shown;
  }
  return out;
}

std::string formatDuration(std::int64_t millis) {
  char text[32];
  if (millis < 1000) {
    std::snprintf(text, sizeof text, "%lld ms", static_cast<long long>(millis));
  } else if (millis < 60'000) {
    std::snprintf(text, sizeof text, "%.2f s", static_cast<double>(millis) / 1000);
  } else {
    std::snprintf(text, sizeof text, "%lld min %lld s", static_cast<long long>(millis / 60'000),
                  static_cast<long long>(millis % 60'000 / 1000));
  }
  return text;
}

std::string formatAge(std::int64_t atMillis) {
  if (atMillis == 0) return "-";
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return formatDuration(std::max<std::int64_t>(0, now - atMillis)) + " ago";
}

std::string formatTimeline(const client::Session& session) {
  struct Mark {
    const char* name;
    std::int64_t at;
  };
  const Mark marks[] = {{"submitted", session.createdAtMs},
                        {"scheduled", session.scheduledAtMs},
                        {"started", session.startedAtMs},
                        {"exited", session.endedAtMs}};
  std::string out;
  const Mark* previous = &marks[0];
  for (const Mark& mark : marks) {
    if (&mark == &marks[0] || mark.at == 0) continue;
    out += std::string("  ") + previous->name + " -> " + mark.name + ": " + formatDuration(mark.at - previous->at) + "\n";
    previous = &mark;
  }
  if (previous != &marks[0]) {
    out += std::string("  total (submitted -> ") + previous->name + "): " + formatDuration(previous->at - marks[0].at) + "\n";
  }
  return out;
}

}  // namespace bai::cli
