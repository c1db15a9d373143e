// The Linux list syntax of cpuset.cpus and cpuset.mems ("0-3,8"): the cpu plugin writes
// it into prepare_session's limits, the agent reads it back, the cgroup back ends write it
// into the kernel. Header-only and never installed, like bounded_json.hpp: plugins and the
// agent's core both include it, neither may link the other.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bai::internal {

// `ids` sorted ascending without duplicates; consecutive runs become ranges.
inline std::string formatCpuList(const std::vector<unsigned>& ids) {
  std::string text;
  for (std::size_t first = 0; first < ids.size();) {
    std::size_t last = first;
    while (last + 1 < ids.size() && ids[last + 1] == ids[last] + 1) ++last;
    if (!text.empty()) text += ',';
    text += std::to_string(ids[first]);
    if (last > first) text += '-' + std::to_string(ids[last]);
    first = last + 1;
  }
  return text;
}

// Comma-separated numbers and FIRST-LAST ranges (FIRST <= LAST), each number at most five
// digits: the ids sorted, without duplicates. Nothing else, and no empty list.
inline std::optional<std::vector<unsigned>> parseCpuList(std::string_view text) {
  auto number = [](std::string_view digits) -> std::optional<unsigned> {
    if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string_view::npos) {
      return std::nullopt;
    }
    return static_cast<unsigned>(std::stoul(std::string(digits)));
  };
  std::vector<unsigned> ids;
  for (std::size_t at = 0; at <= text.size();) {
    std::size_t end = text.find(',', at);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view part = text.substr(at, end - at);
    const std::size_t dash = part.find('-');
    const auto first = number(part.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : number(part.substr(dash + 1));
    if (!first || !last || *last < *first) return std::nullopt;  // also "", "1,", ",1"
    for (unsigned id = *first; id <= *last; ++id) ids.push_back(id);
    at = end + 1;
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace bai::internal
