// A container session's console and execs as session streams. The container's output
// comes from the runtime's attach (made before its start, with stdin open); the console
// hands it to the one attached client, or keeps the latest of it for the next one, and
// writes the client's input to the container's stdin.
#pragma once

#include "agent/session_stream.hpp"
#include "runtime/container_engine.hpp"

#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace bai::core {

class ContainerConsole : public std::enable_shared_from_this<ContainerConsole> {
 public:
  using Resize = std::function<Result<void>(stream::TerminalSize)>;
  ContainerConsole(std::size_t replayBytes, Resize resize) : replayBytes_(replayBytes), resize_(std::move(resize)) {}

  // The container's stdin, once attached.
  void setInput(std::unique_ptr<EngineStream> input);
  // Output, on the engine's reader thread: waits while an attached client is behind.
  void output(int stream, std::string_view bytes);
  // The container ended: the attached client gets Exit (or Error) after its output.
  void ended(const std::optional<int>& exitCode, const std::string& error);
  // Ends the client's stream and stdin (the runtime stops).
  void shutdown();

  // A newer attach takes over: the older client gets an Error and its stream ends.
  Result<std::unique_ptr<SessionStream>> attach(std::optional<stream::TerminalSize> size);

 private:
  class Client;
  Result<void> write(const stream::Frame& frame);
  void detach(const std::shared_ptr<FrameQueue>& queue);

  const std::size_t replayBytes_;
  const Resize resize_;
  std::mutex mutex_;
  std::unique_ptr<EngineStream> input_;
  std::shared_ptr<FrameQueue> client_;  // the attached client's output, or none
  std::deque<stream::Frame> replay_;    // output while none is attached, at most replayBytes_
  std::size_t replayed_ = 0;
  std::optional<stream::Frame> last_;  // Exit or Error once ended
};

// An exec in a running container, through the engine.
Result<std::unique_ptr<SessionStream>> startContainerExec(ContainerEngine& engine, const std::string& container,
                                                          const ExecRequest& request);

}  // namespace bai::core
