// `bai session app`: a local TCP listener whose every connection is piped through its
// own stream to a session's service (Client::connectService), bytes both ways with
// half-closes passed on, at the pace of the slower side.
#pragma once

#include "frame_stream.hpp"

#include <bai/result.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

namespace bai::cli {

struct BindAddress {
  std::string host;
  std::uint16_t port = 0;  // 0: any free port
};

// "HOST:PORT", "[IPv6]:PORT"; the error names the text.
Result<BindAddress> parseBindAddress(const std::string& text);

// A refusal every later connection would get too (not the caller's, no such service, the
// session not running); a 502 (nothing listens yet) or a 429 is one connection's.
bool endsTheTunnel(const client::ApiError& error);

// Copies one connection's bytes both ways until both sides are done: the socket's end
// of file becomes Eof on the stream, the stream's Eof a half-close of the socket. The
// next chunk is read from one side only once the last was taken by the other. Closes
// the stream, never the socket (its owner's). Returns why it ended early, or "".
std::string pipeConnection(int socket, FrameStream& stream);

// Why serve() returned.
struct TunnelEnd {
  enum class Kind { Stopped, Refused };
  Kind kind = Kind::Stopped;
  client::ApiError refusal = {};  // Refused: the manager's answer that ends the tunnel
};

class TunnelListener {
 public:
  using Opener = std::function<client::ClientResult<std::unique_ptr<FrameStream>>()>;

  // Binds and listens; the error names the address and the reason.
  static Result<std::unique_ptr<TunnelListener>> open(const BindAddress& address);
  ~TunnelListener();

  // "http://127.0.0.1:41234": where it listens, its port as bound.
  std::string url() const;
  std::uint16_t port() const { return port_; }

  // Accepts connections until `stopFd` is readable, each piped through its own stream
  // from `open` on its own thread. A refusal that no later connection would escape (the
  // session or service is gone, the keypair may not) stops it too; others (too many
  // connections, an unreachable manager) drop that one connection, said on `log`.
  // Every connection is closed before it returns.
  TunnelEnd serve(const Opener& open, int stopFd, std::ostream& log);

 private:
  TunnelListener(int fd, std::string host, std::uint16_t port) : fd_(fd), host_(std::move(host)), port_(port) {}
  int fd_;
  std::string host_;
  std::uint16_t port_;
};

}  // namespace bai::cli
