#include "agent/container_console.hpp"

namespace bai::core {
namespace {

stream::Frame outputFrame(int stream, std::string_view bytes) {
  return {stream == 2 ? stream::FrameType::Stderr : stream::FrameType::Stdout, std::string(bytes)};
}

stream::Frame endFrame(const std::optional<int>& exitCode, const std::string& error) {
  if (exitCode && *exitCode >= 0) return {stream::FrameType::Exit, stream::exitPayload(*exitCode)};
  return {stream::FrameType::Error, error.empty() ? "the session ended" : error};
}

}  // namespace

class ContainerConsole::Client final : public SessionStream {
 public:
  Client(std::shared_ptr<ContainerConsole> console, std::shared_ptr<FrameQueue> queue)
      : console_(std::move(console)), queue_(std::move(queue)) {}
  ~Client() override { close(); }
  std::optional<stream::Frame> read() override { return queue_->pop(); }
  Result<void> write(const stream::Frame& frame) override { return console_->write(frame); }
  void close() override {
    queue_->abort();
    console_->detach(queue_);
  }

 private:
  std::shared_ptr<ContainerConsole> console_;
  std::shared_ptr<FrameQueue> queue_;
};

void ContainerConsole::setInput(std::unique_ptr<EngineStream> input) {
  const std::lock_guard lock(mutex_);
  input_ = std::move(input);
}

void ContainerConsole::output(int stream, std::string_view bytes) {
  std::shared_ptr<FrameQueue> client;
  {
    const std::lock_guard lock(mutex_);
    client = client_;
    if (!client) {
      replay_.push_back(outputFrame(stream, bytes));
      replayed_ += bytes.size();
      while (replayed_ > replayBytes_ && !replay_.empty()) {
        replayed_ -= replay_.front().payload.size();
        replay_.pop_front();
      }
      return;
    }
  }
  (void)client->push(outputFrame(stream, bytes));  // false: the client left meanwhile; the logs have it
}

void ContainerConsole::ended(const std::optional<int>& exitCode, const std::string& error) {
  std::shared_ptr<FrameQueue> client;
  {
    const std::lock_guard lock(mutex_);
    last_ = endFrame(exitCode, error);
    client = std::exchange(client_, nullptr);
  }
  if (client) {
    client->push(*last_);
    client->close();
  }
}

void ContainerConsole::shutdown() {
  std::shared_ptr<FrameQueue> client;
  {
    const std::lock_guard lock(mutex_);
    client = std::exchange(client_, nullptr);
    if (input_) input_->close();
  }
  if (client) client->abort();
}

Result<std::unique_ptr<SessionStream>> ContainerConsole::attach(std::optional<stream::TerminalSize> size) {
  auto queue = std::make_shared<FrameQueue>();
  std::shared_ptr<FrameQueue> older;
  {
    const std::lock_guard lock(mutex_);
    if (last_) return fail(ErrorCode::NotFound, "the session has ended");
    for (auto& frame : replay_) queue->push(std::move(frame));  // at most replayBytes_: below the queue's bound
    replay_.clear();
    replayed_ = 0;
    older = std::exchange(client_, queue);
  }
  if (older) older->finishWith({stream::FrameType::Error, "another client attached to this session"});
  if (size && resize_) (void)resize_(*size);
  return std::unique_ptr<SessionStream>(std::make_unique<Client>(shared_from_this(), queue));
}

Result<void> ContainerConsole::write(const stream::Frame& frame) {
  if (frame.type == stream::FrameType::Resize) {
    auto size = stream::parseResize(frame.payload);
    if (!size) return fail(ErrorCode::InvalidArgument, "a Resize frame carries rows and columns, both above 0");
    return resize_ ? resize_(*size) : Result<void>{};
  }
  std::unique_lock lock(mutex_);
  EngineStream* input = input_.get();
  lock.unlock();  // a write may wait for the container: never under the lock
  if (input == nullptr) return fail(ErrorCode::Internal, "the container's stdin is not attached");
  if (frame.type == stream::FrameType::Eof) return input->closeWrite();
  return input->write(frame.payload);
}

void ContainerConsole::detach(const std::shared_ptr<FrameQueue>& queue) {
  const std::lock_guard lock(mutex_);
  if (client_ == queue) client_ = nullptr;
}

namespace {

// One exec: its output from the engine's reader thread, its exit from the engine once
// the output ended.
class ExecStream final : public SessionStream {
 public:
  ExecStream(ContainerEngine& engine, std::string execId) : engine_(engine), execId_(std::move(execId)) {}
  ~ExecStream() override { close(); }

  const std::shared_ptr<FrameQueue>& queue() const { return queue_; }
  void setInput(std::unique_ptr<EngineStream> input) { input_ = std::move(input); }

  std::optional<stream::Frame> read() override { return queue_->pop(); }
  Result<void> write(const stream::Frame& frame) override {
    if (frame.type == stream::FrameType::Resize) {
      auto size = stream::parseResize(frame.payload);
      if (!size) return fail(ErrorCode::InvalidArgument, "a Resize frame carries rows and columns, both above 0");
      return engine_.resizeExec(execId_, size->rows, size->cols);
    }
    if (frame.type == stream::FrameType::Eof) return input_->closeWrite();
    return input_->write(frame.payload);
  }
  void close() override {
    queue_->abort();
    if (input_) input_->close();  // the exec is hung up
  }

 private:
  ContainerEngine& engine_;
  const std::string execId_;
  std::shared_ptr<FrameQueue> queue_ = std::make_shared<FrameQueue>();
  std::unique_ptr<EngineStream> input_;
};

}  // namespace

Result<std::unique_ptr<SessionStream>> startContainerExec(ContainerEngine& engine, const std::string& container,
                                                          const ExecRequest& request) {
  ExecSpec spec;
  spec.command = request.command;
  spec.env = request.env;
  spec.tty = request.tty;
  spec.openStdin = request.openStdin;
  auto execId = engine.createExec(container, spec);
  if (!execId) return Failure{execId.error()};
  auto exec = std::make_unique<ExecStream>(engine, *execId);
  std::shared_ptr<FrameQueue> queue = exec->queue();
  auto input = engine.startExec(
      *execId, request.tty, [queue](int stream, std::string_view bytes) { queue->push(outputFrame(stream, bytes)); },
      [queue, &engine, id = *execId](Result<void>) {
        auto state = engine.inspectExec(id);
        queue->push(state && state->exitCode ? stream::Frame{stream::FrameType::Exit, stream::exitPayload(*state->exitCode)}
                                             : stream::Frame{stream::FrameType::Error, "the exec's exit is unknown"});
        queue->close();
      });
  if (!input) return Failure{input.error()};
  exec->setInput(std::move(*input));
  if (request.size) (void)engine.resizeExec(*execId, request.size->rows, request.size->cols);
  return std::unique_ptr<SessionStream>(std::move(exec));
}

}  // namespace bai::core
