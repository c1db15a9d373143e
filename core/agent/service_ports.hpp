// The loopback ports process sessions' services listen on: a process session shares the
// node's network, so each declared service gets a port of its own from
// interactive.service-port-range, passed in BAI_SERVICE_PORT_<NAME>. Any thread.
#pragma once

#include <bai/result.hpp>

#include <cstdint>
#include <mutex>
#include <set>
#include <vector>

namespace bai::core {

class ServicePortPool {
 public:
  ServicePortPool(std::uint16_t first, std::uint16_t last) : first_(first), last_(last) {}

  // `count` ports held by no session and free to bind on 127.0.0.1 now; OutOfRange
  // naming the range when fewer are left.
  Result<std::vector<std::uint16_t>> take(std::size_t count);
  // A recovered session's ports, held again.
  void hold(const std::vector<std::uint16_t>& ports);
  void giveBack(const std::vector<std::uint16_t>& ports);

 private:
  const std::uint16_t first_, last_;
  std::mutex mutex_;
  std::set<std::uint16_t> held_;
  std::uint32_t next_ = 0;  // where the search goes on: recently freed ports rest a while
};

}  // namespace bai::core
