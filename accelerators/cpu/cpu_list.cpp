#include "cpu_list.hpp"

namespace bai::cpu {

std::string formatCpuList(const std::vector<unsigned>& indexes) {
  std::string text;
  for (std::size_t first = 0; first < indexes.size();) {
    std::size_t last = first;
    while (last + 1 < indexes.size() && indexes[last + 1] == indexes[last] + 1) ++last;
    if (!text.empty()) text += ',';
    text += std::to_string(indexes[first]);
    if (last > first) text += '-' + std::to_string(indexes[last]);
    first = last + 1;
  }
  return text;
}

}  // namespace bai::cpu
