// Readers of the byte streams a container engine sends: the multiplexed output of attach
// and logs, and the JSON lines of an image pull. Both are fed what arrives, in pieces of
// any size, and bound what they hold: the engine is not trusted with lengths.
#pragma once

#include "runtime/container_engine.hpp"

#include <bai/result.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace bai::core {

// One frame holds at most this much payload; a longer header is refused.
inline constexpr std::size_t kMaxOutputFrameBytes = std::size_t{1} << 20;
// One line of a pull's progress holds at most this much.
inline constexpr std::size_t kMaxPullLineBytes = std::size_t{1} << 20;

// Docker's stream multiplexing: each frame is 1 byte stream (0 stdin, 1 stdout, 2 stderr),
// 3 zero bytes, a 4-byte big-endian length, then that many bytes. Stream 0 is passed on
// as stdout, as Docker's own client does; anything else is an error.
class OutputDemuxer {
 public:
  explicit OutputDemuxer(std::size_t maxFrameBytes = kMaxOutputFrameBytes) : maxFrameBytes_(maxFrameBytes) {}

  // Passes every complete payload piece of `bytes` to `sink` as soon as it is read (a
  // frame's payload may reach the sink in several pieces).
  Result<void> feed(std::string_view bytes, const OutputSink& sink);
  // At the end of the stream: an error when it stopped inside a frame.
  Result<void> finish() const;

 private:
  std::size_t maxFrameBytes_;
  char header_[8] = {};
  std::size_t headerFilled_ = 0;
  int stream_ = 0;
  std::size_t payloadLeft_ = 0;
};

// The progress of POST /images/create: JSON objects one per line. A line with "error" or
// "errorDetail" is the pull's failure even though the status was 200.
class PullProgressReader {
 public:
  Result<void> feed(std::string_view bytes);
  // At the end of the stream: a trailing line without its newline is read too.
  Result<void> finish();

 private:
  Result<void> readLine(std::string_view line);
  std::string line_;
};

}  // namespace bai::core
