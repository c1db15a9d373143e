// The frames of bai's interactive streams (a session's terminal, an exec, a service
// tunnel), one format on every hop: the client's WebSocket to the manager, the manager's
// to the agent, and the agent's unix socket to bai-session-shim. A frame is one type
// byte and its payload; a WebSocket binary message carries exactly one frame, a byte
// stream carries each after a 4-byte big-endian payload length. Header-only and free of
// bai's libraries: the shim compiles it. Internal to bai.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bai::stream {

enum class FrameType : std::uint8_t {
  Stdin = 0,   // client -> session: input bytes (a tunnel: bytes to the service)
  Stdout = 1,  // session -> client: output (a tty's only output; a tunnel: bytes from the service)
  Stderr = 2,  // session -> client: standard error (never with a tty)
  Resize = 3,  // client -> session: the terminal's size, resizePayload
  Exit = 4,    // session -> client: the command ended, exitPayload; the last frame sent
  Eof = 5,     // either way: no more Stdin (client) or no more output (tunnel's service)
  Error = 6,   // session -> client: why the stream ends, UTF-8 text; the last frame sent
  Exec = 7,    // agent -> shim, the first frame of an exec's connection: execRequestPayload
  Attach = 8,  // agent -> shim, the first frame of a console connection (empty payload)
};
constexpr std::uint8_t kLastFrameType = 8;

struct Frame {
  FrameType type = FrameType::Stdin;
  std::string payload;
};

inline std::string encodeFrame(FrameType type, std::string_view payload) {
  std::string out;
  out.reserve(1 + payload.size());
  out.push_back(static_cast<char>(type));
  out.append(payload);
  return out;
}

// nullopt: empty, or a type this version does not know.
inline std::optional<Frame> decodeFrame(std::string_view message) {
  if (message.empty() || static_cast<std::uint8_t>(message[0]) > kLastFrameType) return std::nullopt;
  return Frame{static_cast<FrameType>(message[0]), std::string(message.substr(1))};
}

// The 4-byte big-endian length that precedes a frame on a byte stream (the shim's socket).
inline std::string lengthPrefix(std::size_t frameBytes) {
  std::string out(4, '\0');
  for (int i = 3; i >= 0; --i, frameBytes >>= 8) out[static_cast<std::size_t>(i)] = static_cast<char>(frameBytes & 0xff);
  return out;
}
inline std::uint32_t readLengthPrefix(const char* bytes) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value = (value << 8) | static_cast<std::uint8_t>(bytes[i]);
  return value;
}

struct TerminalSize {
  std::uint16_t rows = 0;
  std::uint16_t cols = 0;
};

// Resize: rows then columns, each 2 bytes big-endian.
inline std::string resizePayload(TerminalSize size) {
  return {static_cast<char>(size.rows >> 8), static_cast<char>(size.rows & 0xff), static_cast<char>(size.cols >> 8),
          static_cast<char>(size.cols & 0xff)};
}
inline std::optional<TerminalSize> parseResize(std::string_view payload) {
  if (payload.size() != 4) return std::nullopt;
  auto byte = [&](std::size_t i) { return static_cast<std::uint16_t>(static_cast<std::uint8_t>(payload[i])); };
  TerminalSize size{static_cast<std::uint16_t>(byte(0) << 8 | byte(1)), static_cast<std::uint16_t>(byte(2) << 8 | byte(3))};
  if (size.rows == 0 || size.cols == 0) return std::nullopt;
  return size;
}

// Exit: the exit code as decimal text (128 + N for a command killed by signal N, as a
// shell says it).
inline std::string exitPayload(int exitCode) { return std::to_string(exitCode); }
inline std::optional<int> parseExit(std::string_view payload) {
  if (payload.empty() || payload.size() > 4) return std::nullopt;
  int value = 0;
  for (char c : payload) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace bai::stream
