// A TCP service a session offers (Jupyter, TensorBoard, SSH), reached through `bai
// session app`. Declared with the session (`--port jupyter:http:8888`) or by its image's
// label `ai.backend.service-ports` ("jupyter:http:8888,tensorboard:http:6006", as
// Backend.AI's images do). One rule for the CLI, the manager and the agent.
#pragma once

#include <bai/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace bai {

struct ServicePort {
  std::string name;              // 1 to 32 of a-z, 0-9 and '-', starting with a letter
  std::string protocol = "tcp";  // "tcp" or "http": what a client speaks to it
  std::uint16_t port = 0;        // 1..65535, where it listens inside the session

  bool operator==(const ServicePort&) const = default;

  // "name:port" or "name:protocol:port"; the error names the text and what is wrong.
  static Result<ServicePort> parse(std::string_view text);
};

}  // namespace bai
