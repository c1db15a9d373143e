#include "interactive_commands.hpp"

#include "console_forwarder.hpp"
#include "service_tunnel.hpp"
#include "terminal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <memory>
#include <thread>

namespace bai::cli {
namespace {

using std::chrono::milliseconds;

// Copies a stream of a session's logs to `out`, page by page to its end.
bool printLog(const client::Client& api, const std::string& id, const std::string& stream, std::ostream& out) {
  std::uint64_t offset = 0;
  while (true) {
    auto page = api.sessionLogPage(id, {stream, offset, std::nullopt, std::nullopt});
    if (!page) return false;
    out << page->text << std::flush;
    offset = page->nextOffset;
    if (page->atEnd() || page->text.empty()) return true;
  }
}

// The exit code of a session that has ended, saying why when it has none.
int exitCodeOf(const client::Session& session) {
  if (session.exitCode) return *session.exitCode;
  std::cerr << "bai: session " << session.id << " ended " << session.status
            << (session.statusReason.empty() ? "" : ": " + session.statusReason) << "\n";
  return kExitRunFailed;
}

// The session once it has ended: its logs were not seen on a console, so they are printed.
int endedBeforeAttach(CommandContext& context, const client::Client& api, const std::string& id) {
  auto session = api.session(id, milliseconds(10000));
  while (session && !session->isFinal()) session = api.session(id, milliseconds(10000));
  if (!session) return context.fail(session.error()), kExitRunFailed;
  printLog(api, id, "stdout", std::cout);
  printLog(api, id, "stderr", std::cerr);
  return exitCodeOf(*session);
}

// After a stream that ended without an exit code: the session's own, if it has ended.
int afterLostStream(const client::Client& api, const std::string& id, const std::string& why) {
  auto session = api.session(id, milliseconds(2000));
  if (session && session->isFinal()) return exitCodeOf(*session);
  std::cerr << "bai: " << why << "; session " << id << " keeps running: bai session attach " << id << "\n";
  return kExitRunFailed;
}

// The session after a long poll of about a second: the manager answers at once only when
// it has ended; a manager that answers sooner (or not at all) is asked again no sooner.
client::ClientResult<client::Session> pollSession(const client::Client& api, const std::string& id) {
  const auto start = std::chrono::steady_clock::now();
  auto session = api.session(id, milliseconds(1000));
  if (!session || !session->isFinal()) std::this_thread::sleep_until(start + milliseconds(1000));
  return session;
}

// The session once it runs (or has ended): a console or a service is there only then.
client::ClientResult<client::Session> waitUntilStarted(const client::Client& api, const std::string& id) {
  auto session = api.session(id);
  bool said = false;
  while (session && !session->isFinal() && session->status != "RUNNING" && session->status != "TERMINATING") {
    if (!said) std::cerr << "bai: session " << id << " is " << session->status << "; waiting for it to start\n";
    said = true;
    session = pollSession(api, id);
  }
  return session;
}

ConsoleOptions consoleOptions(bool forwardInput, bool detachKeys) {
  SignalPipe& signals = SignalPipe::install({SIGWINCH, SIGINT, SIGTERM, SIGHUP});
  ConsoleOptions options;
  options.forwardInput = forwardInput;
  options.detachKeys = detachKeys;
  options.signalFd = signals.fd();
  options.drainSignals = [&signals] { return signals.drain(); };
  options.windowSize = [] { return terminalSize(STDIN_FILENO); };
  return options;
}

// ---- exec ------------------------------------------------------------------------------

struct ExecCommand {
  std::string id;
  std::vector<std::string> command;
  bool interactive = false;
  bool tty = false;
};

int exec(CommandContext& context, const ExecCommand& options) {
  const client::Client* api = context.api();
  if (api == nullptr) return kExitUsage;
  const bool raw = options.tty && isTerminal(STDIN_FILENO);
  client::ExecOptions exec{options.command, options.tty, options.interactive, {}};
  if (raw) exec.size = terminalSize(STDIN_FILENO).value_or(client::TerminalSize{});
  auto stream = api->execInSession(options.id, exec);
  if (!stream) return context.fail(stream.error());
  SessionFrameStream frames(std::move(*stream));
  ConsoleOutcome outcome;
  {
    RawTerminal terminal(raw ? STDIN_FILENO : -1);
    outcome = forwardConsole(frames, consoleOptions(options.interactive || options.tty, false));
  }
  switch (outcome.kind) {
    case ConsoleOutcome::Kind::Exited:
      return outcome.exitCode;
    case ConsoleOutcome::Kind::Interrupted:
      std::cerr << "bai: interrupted\n";
      return kExitInterrupted;
    case ConsoleOutcome::Kind::Detached:  // exec has no detach keys
    case ConsoleOutcome::Kind::Failed:
    case ConsoleOutcome::Kind::Lost:
      break;
  }
  std::cerr << "bai: exec in session " << options.id << ": " << outcome.message << "\n";
  return kExitRunFailed;
}

// ---- attach ----------------------------------------------------------------------------

int attach(CommandContext& context, const std::string& id) {
  const client::Client* api = context.api();
  if (api == nullptr) return kExitUsage;
  auto session = waitUntilStarted(*api, id);
  if (!session) return context.fail(session.error());
  if (session->isFinal()) {
    std::cerr << "bai: session " << id << " has ended (" << session->status << "); its output: bai session logs " << id << "\n";
    return exitCodeOf(*session);
  }
  return followConsole(context, *api, *session, false);
}

// ---- app -------------------------------------------------------------------------------

struct AppCommand {
  std::string id;
  std::string service;
  std::string bind = "127.0.0.1:0";
};

// Watches the session until it ends (or `stop`), then writes to `wakeFd`.
class SessionWatch {
 public:
  SessionWatch(const client::Client& api, std::string id, int wakeFd)
      : thread_([this, &api, id = std::move(id), wakeFd] {
          while (!stop_) {
            // An unanswered poll (the manager restarting) is tried again, a second later.
            auto session = pollSession(api, id);
            if (session && session->isFinal()) {
              ended_ = *session;
              [[maybe_unused]] const ssize_t written = ::write(wakeFd, "x", 1);
              return;
            }
          }
        }) {}
  ~SessionWatch() {
    stop_ = true;
    thread_.join();
  }
  // Set once the session has ended; read after the wake.
  const std::optional<client::Session>& ended() const { return ended_; }

 private:
  std::atomic<bool> stop_{false};
  std::optional<client::Session> ended_;
  std::thread thread_;
};

int app(CommandContext& context, const AppCommand& options) {
  auto address = parseBindAddress(options.bind);
  if (!address) return context.usage(address.error().message);
  const client::Client* api = context.api();
  if (api == nullptr) return kExitUsage;
  auto session = waitUntilStarted(*api, options.id);
  if (!session) return context.fail(session.error());
  if (session->isFinal()) {
    std::cerr << "bai: session " << options.id << " has ended (" << session->status << "): no service to reach\n";
    return kExitRefused;
  }
  // A service the session lacks, or a session that is not the caller's, is said now and
  // not at the first connection: one connection is opened and dropped. Nothing listening
  // yet (502) is fine, the service may still be starting.
  if (auto probe = api->connectService(options.id, options.service); !probe && endsTheTunnel(probe.error())) {
    return context.fail(probe.error());
  }
  auto listener = TunnelListener::open(*address);
  if (!listener) return context.usage(listener.error().message);

  SignalPipe& signals = SignalPipe::install({SIGINT, SIGTERM, SIGHUP});
  int ended[2];
  if (::pipe2(ended, O_CLOEXEC) != 0) return context.usage("cannot create a pipe");
  std::cout << (*listener)->url() << std::endl;  // flushed: scripts and people wait for it
  std::cerr << "bai: forwarding " << (*listener)->url() << " to service '" << options.service << "' of session "
            << options.id << "; Ctrl-C ends it\n";

  TunnelEnd end;
  std::optional<client::Session> endedSession;
  {
    SessionWatch watch(*api, options.id, ended[1]);
    // Stops on a signal or the session's end, whichever comes first.
    int stop[2];
    if (::pipe2(stop, O_CLOEXEC) != 0) return context.usage("cannot create a pipe");
    std::atomic<bool> serving{true};
    std::thread relay([&] {
      pollfd fds[2] = {{signals.fd(), POLLIN, 0}, {ended[0], POLLIN, 0}};
      while (serving) {
        if (::poll(fds, 2, 200) > 0) break;
      }
      [[maybe_unused]] const ssize_t written = ::write(stop[1], "x", 1);
    });
    const TunnelListener::Opener open = [api, &options]() -> client::ClientResult<std::unique_ptr<FrameStream>> {
      auto stream = api->connectService(options.id, options.service);
      if (!stream) return Failure{stream.error()};
      return std::unique_ptr<FrameStream>(std::make_unique<SessionFrameStream>(std::move(*stream)));
    };
    end = (*listener)->serve(open, stop[0], std::cerr);
    serving = false;
    relay.join();
    ::close(stop[0]);
    ::close(stop[1]);
    signals.drain();
    endedSession = watch.ended();
  }
  ::close(ended[0]);
  ::close(ended[1]);
  if (end.kind == TunnelEnd::Kind::Refused) return context.fail(end.refusal);
  if (endedSession) {
    std::cerr << "bai: session " << options.id << " ended (" << endedSession->status << "); closed " << (*listener)->url() << "\n";
    return kExitRefused;
  }
  return kExitOk;
}

}  // namespace

int followConsole(CommandContext& context, const client::Client& api, const client::Session& session, bool ownsSession) {
  const bool raw = session.tty && isTerminal(STDIN_FILENO);
  auto stream = api.attachSession(session.id, raw ? terminalSize(STDIN_FILENO).value_or(client::TerminalSize{})
                                                  : client::TerminalSize{});
  if (!stream && stream.error().type == "session-not-running") return endedBeforeAttach(context, api, session.id);
  if (!stream) return ownsSession ? (context.fail(stream.error()), kExitRunFailed) : context.fail(stream.error());
  SessionFrameStream frames(std::move(*stream));
  ConsoleOutcome outcome;
  {
    RawTerminal terminal(raw ? STDIN_FILENO : -1);
    outcome = forwardConsole(frames, consoleOptions(true, raw));
  }
  switch (outcome.kind) {
    case ConsoleOutcome::Kind::Exited:
      return outcome.exitCode;
    case ConsoleOutcome::Kind::Detached:
      std::cerr << "\nbai: detached; session " << session.id << " keeps running: bai session attach " << session.id << "\n";
      return kExitOk;
    case ConsoleOutcome::Kind::Interrupted:
      if (ownsSession) {
        auto destroyed = api.destroySession(session.id);
        std::cerr << "bai: interrupted; "
                  << (destroyed ? "destroyed session " + session.id
                                : "could not destroy session " + session.id + ": " + destroyed.error().message())
                  << "\n";
      } else {
        std::cerr << "bai: interrupted; session " << session.id << " keeps running: bai session attach " << session.id << "\n";
      }
      return kExitInterrupted;
    case ConsoleOutcome::Kind::Failed:
      std::cerr << "bai: session " << session.id << ": " << outcome.message << "\n";
      return kExitRunFailed;
    case ConsoleOutcome::Kind::Lost:
      break;
  }
  return afterLostStream(api, session.id, outcome.message);
}

void addInteractiveCommands(CLI::App* session, CommandContext& context) {
  auto execOptions = std::make_shared<ExecCommand>();
  CLI::App* execCommand = session->add_subcommand(
      "exec", "run another command in a running session (its user, cgroups, namespaces, environment); exits with its code");
  execCommand->add_flag("-i,--interactive", execOptions->interactive, "forward stdin to the command (end of file included)");
  execCommand->add_flag("-t,--tty", execOptions->tty, "run it on a pseudo-terminal (this terminal in raw mode)");
  execCommand->add_option("id", execOptions->id, "session id")->required();
  execCommand->add_option("command", execOptions->command, "the command to run, after --")->required();
  execCommand->callback([&context, execOptions] { context.action = [&context, execOptions] { return exec(context, *execOptions); }; });

  auto attachId = std::make_shared<std::string>();
  CLI::App* attachCommand = session->add_subcommand(
      "attach", "attach to the console of a session started with -i or -t (Ctrl-P Ctrl-Q detaches); exits with its code");
  attachCommand->add_option("id", *attachId, "session id")->required();
  attachCommand->callback([&context, attachId] { context.action = [&context, attachId] { return attach(context, *attachId); }; });

  auto appOptions = std::make_shared<AppCommand>();
  CLI::App* appCommand = session->add_subcommand(
      "app", "reach a session's service (declared with --port) on a local address, until Ctrl-C or the session ends");
  appCommand->add_option("id", appOptions->id, "session id")->required();
  appCommand->add_option("service", appOptions->service, "the service's name (e.g. jupyter)")->required();
  appCommand->add_option("--bind", appOptions->bind, "HOST:PORT to listen on (default 127.0.0.1:0: any free port)");
  appCommand->callback([&context, appOptions] { context.action = [&context, appOptions] { return app(context, *appOptions); }; });
}

}  // namespace bai::cli
