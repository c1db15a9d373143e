// Linux cpuset list syntax ("0-3,8"), as cgroups' cpuset.cpus and cpuset.mems take it.
#pragma once

#include <string>
#include <vector>

namespace bai::cpu {

// `indexes` sorted ascending without duplicates; consecutive runs become ranges.
std::string formatCpuList(const std::vector<unsigned>& indexes);

}  // namespace bai::cpu
