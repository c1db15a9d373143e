#include "runtime/proc_stat.hpp"

#include "runtime/atomic_file.hpp"

#include <charconv>
#include <string>
#include <string_view>
#include <vector>

namespace bai::core {
namespace {

template <class Number>
bool parseNumber(std::string_view text, Number& out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

Result<ProcessStat> readProcessStat(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  Result<std::string> text = readWholeFile(path);
  if (!text.ok()) return Failure{text.error()};
  // Field 2 is "(comm)" and comm may hold spaces and parentheses: fields resume after the last ')'.
  std::size_t close = text->rfind(')');
  if (close == std::string::npos) return fail(ErrorCode::Internal, path + ": no command field");
  std::vector<std::string_view> fields;  // fields[0] is field 3 (state)
  std::string_view rest(text->data() + close + 1, text->size() - close - 1);
  while (!rest.empty()) {
    std::size_t start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    std::size_t end = rest.find_first_of(" \n");
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  ProcessStat stat;
  if (fields.size() < 20 || fields[0].size() != 1 || !parseNumber(fields[1], stat.ppid) ||
      !parseNumber(fields[2], stat.pgrp) || !parseNumber(fields[19], stat.startTime)) {
    return fail(ErrorCode::Internal, path + ": unexpected format");
  }
  stat.state = fields[0][0];
  return stat;
}

}  // namespace bai::core
