#include "runtime/device_rules.hpp"

namespace bai::core {
namespace {

std::string numberOrAny(const std::optional<std::uint32_t>& number) {
  return number ? std::to_string(*number) : "*";
}

}  // namespace

std::string devicesAllowLine(const DeviceRule& rule) {
  return std::string(1, rule.type) + " " + numberOrAny(rule.major) + ":" + numberOrAny(rule.minor) + " " + rule.access;
}

Result<void> checkDeviceRule(const DeviceRule& rule) {
  auto refuse = [&](const std::string& why) {
    std::string shown = std::string(1, rule.type) + " " + numberOrAny(rule.major) + ":" + numberOrAny(rule.minor) +
                        " '" + rule.access + "'";
    return fail(ErrorCode::InvalidArgument, "device rule " + shown + ": " + why);
  };
  if (rule.type != 'c' && rule.type != 'b') return refuse("the type must be 'c' or 'b'");
  if (rule.major && *rule.major > kMaxDeviceMajor) return refuse("the major number is above 4095");
  if (rule.minor && *rule.minor > kMaxDeviceMinor) return refuse("the minor number is above 1048575");
  if (rule.access.empty()) return refuse("the access is empty (a subset of \"rwm\")");
  for (std::size_t i = 0; i < rule.access.size(); ++i) {
    char letter = rule.access[i];
    if (letter != 'r' && letter != 'w' && letter != 'm') return refuse("the access must be a subset of \"rwm\"");
    if (rule.access.find(letter, i + 1) != std::string::npos) return refuse("the access repeats a letter");
  }
  return {};
}

}  // namespace bai::core
