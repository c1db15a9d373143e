#include <bai/service_port.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace bai {

namespace {

bool isServiceName(std::string_view name) {
  if (name.empty() || name.size() > 32 || name.front() < 'a' || name.front() > 'z') return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

}  // namespace

Result<ServicePort> ServicePort::parse(std::string_view text) {
  const std::string quoted = "service port '" + std::string(text) + "': ";
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const std::size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  if (parts.size() < 2 || parts.size() > 3) return fail(ErrorCode::InvalidArgument, quoted + "expected NAME:PORT or NAME:PROTOCOL:PORT");
  ServicePort service;
  service.name = std::string(parts.front());
  if (!isServiceName(service.name)) {
    return fail(ErrorCode::InvalidArgument, quoted + "the name must be 1 to 32 of a-z, 0-9 and '-', starting with a letter");
  }
  if (parts.size() == 3) service.protocol = std::string(parts[1]);
  if (service.protocol != "tcp" && service.protocol != "http") {
    return fail(ErrorCode::InvalidArgument, quoted + "the protocol must be tcp or http");
  }
  const std::string_view port = parts.back();
  unsigned long value = 0;
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
      (value = std::stoul(std::string(port))) == 0 || value > 65535) {
    return fail(ErrorCode::InvalidArgument, quoted + "the port must be 1 to 65535");
  }
  service.port = static_cast<std::uint16_t>(value);
  return service;
}

}  // namespace bai
