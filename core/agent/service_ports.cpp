#include "agent/service_ports.hpp"

#include "agent/session_runtime.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace bai::core {
namespace {

bool bindable(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return free;
}

}  // namespace

Result<std::vector<std::uint16_t>> ServicePortPool::take(std::size_t count) {
  const std::lock_guard lock(mutex_);
  const std::uint32_t size = std::uint32_t{last_} - first_ + 1;
  std::vector<std::uint16_t> taken;
  for (std::uint32_t tried = 0; tried < size && taken.size() < count; ++tried) {
    const auto port = static_cast<std::uint16_t>(first_ + (next_++ % size));
    if (held_.count(port) != 0 || !bindable(port)) continue;
    held_.insert(port);
    taken.push_back(port);
  }
  if (taken.size() < count) {
    for (auto port : taken) held_.erase(port);
    return fail(ErrorCode::OutOfRange, "no free port left for a service in interactive.service-port-range " +
                                           std::to_string(first_) + "-" + std::to_string(last_));
  }
  return taken;
}

void ServicePortPool::hold(const std::vector<std::uint16_t>& ports) {
  const std::lock_guard lock(mutex_);
  held_.insert(ports.begin(), ports.end());
}

void ServicePortPool::giveBack(const std::vector<std::uint16_t>& ports) {
  const std::lock_guard lock(mutex_);
  for (auto port : ports) held_.erase(port);
}

Result<protocol::ServicePort> findService(const std::vector<protocol::ServicePort>& services, const std::string& sessionId,
                                          const std::string& name) {
  for (const auto& service : services) {
    if (service.name == name) return service;
  }
  std::string known;
  for (const auto& service : services) known += (known.empty() ? "" : ", ") + service.name;
  return fail(ErrorCode::NotFound, "session " + sessionId + " has no service '" + name + "' (" +
                                       (known.empty() ? "it declares none" : "it has: " + known) + ")");
}

}  // namespace bai::core
