#include "runtime/shim_exec_channel.hpp"

#include "runtime/atomic_file.hpp"
#include "runtime/console_protocol.hpp"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>

namespace bai::core::shim {
namespace {

// kind (1 byte), id (4), status (4), then the request.
constexpr std::size_t kHeaderBytes = 9;
constexpr std::size_t kMaxMessageBytes = kHeaderBytes + kMaxConsoleFrameBytes;

std::string header(ExecMessageKind kind, std::uint32_t id, int status) {
  std::string out(kHeaderBytes, '\0');
  out[0] = static_cast<char>(kind);
  std::memcpy(out.data() + 1, &id, sizeof id);
  std::memcpy(out.data() + 5, &status, sizeof status);
  return out;
}

Result<void> sendMessage(int channel, const std::string& message, const int* fds, std::size_t fdCount) {
  iovec part{const_cast<char*>(message.data()), message.size()};
  msghdr header{};
  header.msg_iov = &part;
  header.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))]{};
  if (fdCount > 0) {
    header.msg_control = control;
    header.msg_controllen = CMSG_SPACE(fdCount * sizeof(int));
    cmsghdr* rights = CMSG_FIRSTHDR(&header);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(fdCount * sizeof(int));
    std::memcpy(CMSG_DATA(rights), fds, fdCount * sizeof(int));
  }
  for (;;) {
    if (::sendmsg(channel, &header, MSG_NOSIGNAL) >= 0) return {};
    if (errno != EINTR) return fail(ErrorCode::Internal, describeErrno("sending to the session's init", errno));
  }
}

}  // namespace

Result<std::array<int, 2>> openExecChannel() {
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0) {
    return fail(ErrorCode::Internal, describeErrno("socketpair for the exec channel", errno));
  }
  return std::array<int, 2>{ends[0], ends[1]};
}

Result<void> sendExecStart(int channel, std::uint32_t id, std::string_view request, const std::array<int, 3>& fds) {
  if (request.size() > kMaxConsoleFrameBytes) return fail(ErrorCode::OutOfRange, "exec request too large");
  std::string message = header(ExecMessageKind::Start, id, 0);
  message.append(request);
  return sendMessage(channel, message, fds.data(), fds.size());
}

Result<void> sendExecHangUp(int channel, std::uint32_t id) {
  return sendMessage(channel, header(ExecMessageKind::HangUp, id, 0), nullptr, 0);
}

Result<void> sendExecEnded(int channel, std::uint32_t id, int status) {
  return sendMessage(channel, header(ExecMessageKind::Ended, id, status), nullptr, 0);
}

Result<std::optional<ExecMessage>> receiveExecMessage(int channel) {
  std::string buffer(kMaxMessageBytes, '\0');
  iovec part{buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))]{};
  msghdr header{};
  header.msg_iov = &part;
  header.msg_iovlen = 1;
  header.msg_control = control;
  header.msg_controllen = sizeof control;
  ssize_t got = 0;
  do {
    got = ::recvmsg(channel, &header, MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return fail(ErrorCode::Internal, describeErrno("reading the exec channel", errno));
  if (got == 0) return std::optional<ExecMessage>();
  ExecMessage message;
  for (cmsghdr* item = CMSG_FIRSTHDR(&header); item != nullptr; item = CMSG_NXTHDR(&header, item)) {
    if (item->cmsg_level != SOL_SOCKET || item->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = std::min<std::size_t>((item->cmsg_len - CMSG_LEN(0)) / sizeof(int), 3);
    std::memcpy(message.fds.data(), CMSG_DATA(item), count * sizeof(int));
  }
  const bool truncated = (header.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  const auto kind = static_cast<std::uint8_t>(buffer[0]);
  if (truncated || static_cast<std::size_t>(got) < kHeaderBytes || kind < 1 || kind > 3) {
    for (int fd : message.fds) {
      if (fd >= 0) ::close(fd);
    }
    return fail(ErrorCode::InvalidArgument, "a malformed message on the exec channel");
  }
  message.kind = static_cast<ExecMessageKind>(kind);
  std::memcpy(&message.id, buffer.data() + 1, sizeof message.id);
  std::memcpy(&message.status, buffer.data() + 5, sizeof message.status);
  message.request = buffer.substr(kHeaderBytes, static_cast<std::size_t>(got) - kHeaderBytes);
  return std::optional<ExecMessage>(std::move(message));
}

}  // namespace bai::core::shim
