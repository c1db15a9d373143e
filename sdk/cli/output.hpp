// How the `bai` command line prints for people: aligned tables, amounts by slot type,
// durations, and the one-line error with what to do next.
#pragma once

#include <bai/client.hpp>

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace bai::cli {

// Columns padded to their widest cell, two spaces apart; the last column is not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// "cpu=2 mem=4g cuda.shares=0.5": exact amounts formatted by the cluster's slot types
// (`types`: slot -> type; an unknown slot prints its raw amount).
std::string formatResources(const std::map<std::string, std::string>& resources,
                            const std::map<std::string, std::string>& types);

// "850 ms", "1.25 s", "3 min 20 s".
std::string formatDuration(std::int64_t millis);

// "3 s ago" style age from a timestamp in ms since the epoch; "-" for 0.
std::string formatAge(std::int64_t atMillis);

// One line per span a session has reached: submitted → scheduled → started → exited.
std::string formatTimeline(const client::Session& session);

// A JSON array of the records' documents as the manager sent them.
template <class Record>
std::string jsonArray(const std::vector<Record>& records) {
  std::string out = "[";
  for (const Record& record : records) out += (out.size() > 1 ? "," : "") + record.json;
  return out + "]";
}

}  // namespace bai::cli
