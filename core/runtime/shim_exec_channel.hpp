// How bai-session-shim asks a sandbox's init to run an exec inside the session's
// namespaces: messages on a SOCK_SEQPACKET socketpair, the exec's three descriptors
// passed with SCM_RIGHTS. Only the shim and its init use it.
//   shim -> init  Start  {id, request JSON, fds: stdin, stdout, stderr}
//   shim -> init  HangUp {id}: the client went away, SIGHUP the exec's group
//   init -> shim  Ended  {id, wait status}
#pragma once

#include "bai/result.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bai::core::shim {

enum class ExecMessageKind : std::uint8_t { Start = 1, HangUp = 2, Ended = 3 };

struct ExecMessage {
  ExecMessageKind kind = ExecMessageKind::Start;
  std::uint32_t id = 0;
  int status = 0;                    // Ended: the raw wait status
  std::string request;               // Start: the exec request's JSON
  std::array<int, 3> fds{-1, -1, -1};  // Start: received descriptors, the receiver's to close
};

// A socketpair for the channel: [0] the shim's end, [1] init's; both close on exec.
Result<std::array<int, 2>> openExecChannel();

Result<void> sendExecStart(int channel, std::uint32_t id, std::string_view request, const std::array<int, 3>& fds);
Result<void> sendExecHangUp(int channel, std::uint32_t id);
Result<void> sendExecEnded(int channel, std::uint32_t id, int status);

// The next message; nullopt when the other end closed. Blocks unless the socket does not.
Result<std::optional<ExecMessage>> receiveExecMessage(int channel);

}  // namespace bai::core::shim
