#include "session_commands.hpp"

#include "interactive_commands.hpp"
#include "mount_spec.hpp"
#include "output.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <thread>

namespace bai::cli {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::atomic<bool> interrupted{false};

struct CreateOptions {
  std::vector<std::string> resources;  // SLOT=AMOUNT
  std::vector<std::string> env;        // KEY=VALUE
  std::string group;
  std::string name;
  std::string image;
  std::vector<std::string> command;
  bool interactive = false;        // -i: stdin stays open for the session's console
  bool tty = false;                // -t: a pseudo-terminal (implies -i)
  std::vector<std::string> ports;  // --port NAME:[PROTO:]PORT
  std::vector<std::string> mounts;  // --mount NAME[:/path][:ro]
};

// "cpu=2" -> {"cpu", "2"}; the manager checks the slot and the amount.
bool splitPair(const std::string& text, std::pair<std::string, std::string>& out) {
  const auto equals = text.find('=');
  if (equals == 0 || equals == std::string::npos) return false;
  out = {text.substr(0, equals), text.substr(equals + 1)};
  return true;
}

client::ClientResult<client::SessionSpec> specFrom(const CreateOptions& options) {
  if (options.command.empty() && options.image.empty()) {
    return Failure<client::ApiError>{
        client::ApiError{0, "usage", "", "give the command to run after -- (only a session with --image may leave it out)"}};
  }
  client::SessionSpec spec{options.name, options.command, {}, {}, options.group};
  spec.image = options.image;
  for (const std::string& text : options.resources) {
    std::pair<std::string, std::string> slot;
    if (!splitPair(text, slot) || slot.second.empty()) {
      return Failure<client::ApiError>{client::ApiError{0, "usage", "", "-r takes SLOT=AMOUNT (e.g. -r cuda.shares=0.5), not '" + text + "'"}};
    }
    spec.resources.push_back(slot);
  }
  for (const std::string& text : options.env) {
    std::pair<std::string, std::string> variable;
    if (!splitPair(text, variable)) {
      return Failure<client::ApiError>{client::ApiError{0, "usage", "", "-e takes KEY=VALUE, not '" + text + "'"}};
    }
    spec.env[variable.first] = variable.second;
  }
  spec.openStdin = options.interactive || options.tty;
  spec.tty = options.tty;
  for (const std::string& text : options.ports) {
    auto service = client::ServicePort::parse(text);
    if (!service) return Failure<client::ApiError>{client::ApiError{0, "usage", "", "--port: " + service.error().message}};
    for (const client::ServicePort& declared : spec.servicePorts) {
      if (declared.name == service->name) {
        return Failure<client::ApiError>{
            client::ApiError{0, "usage", "", "--port: service '" + service->name + "' is declared twice"}};
      }
    }
    spec.servicePorts.push_back(std::move(*service));
  }
  for (const std::string& text : options.mounts) {
    auto mount = parseMountSpec(text);
    if (!mount) return Failure<client::ApiError>{client::ApiError{0, "usage", "", mount.error().message}};
    spec.mounts.push_back(std::move(*mount));
  }
  return spec;
}

void addCreateOptions(CLI::App* command, CreateOptions& options) {
  command->add_option("-r,--resource", options.resources, "SLOT=AMOUNT, repeatable: -r cpu=2 -r mem=4g -r cuda.shares=0.5")
      ->allow_extra_args(false);  // one value per -r, so that `--` still ends the options
  command->add_option("-e,--env", options.env, "KEY=VALUE set in the session's environment, repeatable")
      ->allow_extra_args(false);
  command->add_option("-g,--group,--scaling-group", options.group, "scaling group (default: default)");
  command->add_option("-n,--name", options.name, "a name for the session");
  command->add_option("--image", options.image,
                      "NAME[:TAG]: run it in a container of this image (then the command may be left out: the image's own)");
  command->add_flag("-i,--interactive", options.interactive, "keep the session's stdin open: run forwards this stdin to it");
  command->add_flag("-t,--tty", options.tty, "run it on a pseudo-terminal (implies -i; run puts this terminal in raw mode)");
  command->add_option("--port", options.ports, "NAME:[PROTO:]PORT, repeatable: a service to reach with `bai session app` (e.g. jupyter:http:8888)")
      ->allow_extra_args(false);
  command->add_option("--mount", options.mounts,
                      "NAME[:/path][:ro], repeatable: mount a virtual folder (default target /home/work/NAME)")
      ->allow_extra_args(false);
  command->add_option("command", options.command, "the command to run, after --");
}

// Copies what a session wrote since the last call to our stdout and stderr, each stream
// in order, page by page up to the end the manager reports. A pump that starts after the
// session was seen ending copies everything: the shim kills and reaps whatever the
// command left before the session ends, so by then nothing writes to the logs any more.
class LogFollower {
 public:
  LogFollower(const client::Client& api, std::string id) : api_(api), id_(std::move(id)) {}

  // False when the logs cannot be read (the reason is kept in error()).
  bool pump() { return copy("stdout", std::cout) && copy("stderr", std::cerr); }
  // Copies one stream from where the last copy stopped to its end now.
  bool copy(const std::string& stream, std::ostream& out) {
    std::uint64_t& offset = offsets_[stream];
    while (true) {
      auto page = api_.sessionLogPage(id_, {stream, offset, std::nullopt, std::nullopt});
      if (!page) {
        error_ = page.error();
        return false;
      }
      if (!page->text.empty()) out << page->text << std::flush;
      offset = page->nextOffset;
      if (page->atEnd() || page->text.empty()) return true;
    }
  }
  const client::ApiError& error() const { return error_; }

 private:
  const client::Client& api_;
  std::string id_;
  std::map<std::string, std::uint64_t> offsets_;
  client::ApiError error_;
};

// Where the last `lines` lines of `text` begin (a last line without its newline counts),
// when `text` holds that many whole ones.
std::optional<std::size_t> startOfLastLines(const std::string& text, std::uint64_t lines) {
  std::size_t start = text.size();
  if (start > 0 && text[start - 1] == '\n') --start;  // the final newline ends the last line
  for (std::uint64_t line = 0; line < lines; ++line) {
    const std::size_t newline = start == 0 ? std::string::npos : text.rfind('\n', start - 1);
    if (newline == std::string::npos) return std::nullopt;
    start = newline;
  }
  return lines == 0 ? text.size() : start + 1;
}

// The last `lines` lines of a stream, as tail(1) prints them: pages are read back from
// the end until they hold that many lines or the stream's start.
client::ClientResult<std::string> lastLines(const client::Client& api, const std::string& id, const std::string& stream,
                                            std::uint64_t lines) {
  auto page = api.sessionLogPage(id, {stream, 0, std::nullopt, std::uint64_t{1} << 20});
  if (!page) return Failure{page.error()};
  // A page that does not reach the stream's start is as long as the manager's pages are.
  const std::uint64_t pageBytes = std::max<std::uint64_t>(page->text.size(), 1);
  std::string text = std::move(page->text);
  std::uint64_t start = page->offset;
  while (true) {
    if (auto cut = startOfLastLines(text, lines)) return text.substr(*cut);
    if (start == 0) return text;
    const std::uint64_t from = start - std::min(start, pageBytes);
    auto earlier = api.sessionLogPage(id, {stream, from, start - from, std::nullopt});
    if (!earlier) return Failure{earlier.error()};
    if (earlier->offset != from || earlier->text.size() != start - from) return text;  // not the page asked for
    text.insert(0, earlier->text);
    start = from;
  }
}

// "\r| PENDING 1.20 s: no agent has 2 free cuda.device" on a terminal, nothing otherwise.
class Spinner {
 public:
  explicit Spinner(bool enabled) : enabled_(enabled && ::isatty(STDERR_FILENO) == 1) {}
  ~Spinner() { clear(); }

  void show(const client::Session& session) {
    if (!enabled_) return;
    static constexpr char frames[] = {'|', '/', '-', '\\'};
    const auto waited = std::chrono::duration_cast<milliseconds>(Clock::now() - start_).count();
    std::string line = std::string(1, frames[frame_++ % 4]) + " " + session.status + " " + formatDuration(waited);
    if (!session.statusReason.empty()) line += ": " + session.statusReason;
    std::cerr << "\r\033[K" << line.substr(0, 160) << std::flush;
    shown_ = true;
  }
  void clear() {
    if (shown_) std::cerr << "\r\033[K" << std::flush;
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
  unsigned frame_ = 0;
  Clock::time_point start_ = Clock::now();
};

void printSessions(const std::vector<client::Session>& sessions, CommandContext& context) {
  Table table({"ID", "NAME", "STATUS", "RESOURCES", "AGENT", "EXIT", "CREATED", "REASON"});
  for (const auto& s : sessions) {
    table.add({s.id, s.name, s.status, formatResources(s.resources, context.slotTypes()), s.agent.empty() ? "-" : s.agent,
               s.exitCode ? std::to_string(*s.exitCode) : "-", formatAge(s.createdAtMs), s.statusReason});
  }
  table.print(std::cout);
}

void printTiming(const client::Session& session, std::int64_t submitMillis, std::int64_t roundTripMillis) {
  std::cerr << "timing of " << session.id << ":\n" << formatTimeline(session);
  if (submitMillis >= 0) std::cerr << "  submit answered in: " << formatDuration(submitMillis) << "\n";
  if (roundTripMillis >= 0) std::cerr << "  round trip seen by bai: " << formatDuration(roundTripMillis) << "\n";
}

std::int64_t millisSince(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
}

int create(CommandContext& context, const CreateOptions& options) {
  const client::Client* api = context.api();
  if (api == nullptr) return kExitUsage;
  auto spec = specFrom(options);
  if (!spec) return context.usage(spec.error().detail);
  const auto start = Clock::now();
  auto session = api->createSession(*spec);
  const auto submitMillis = millisSince(start);
  if (!session) return context.fail(session.error());
  if (context.json) {
    std::cout << session->json << "\n";
  } else {
    printSessions({*session}, context);
  }
  if (context.timing) printTiming(*session, submitMillis, -1);
  return kExitOk;
}

// run: submit, wait with a spinner, stream the logs, and exit with the command's code.
// Ctrl-C destroys the session.
int run(CommandContext& context, const CreateOptions& options) {
  // Bad arguments or configuration are usage errors (2), as for every command: 125 is
  // kept for a session that produced no exit code.
  const client::Client* api = context.api();
  if (api == nullptr) return kExitUsage;
  auto spec = specFrom(options);
  if (!spec) return context.usage(spec.error().detail);
  std::signal(SIGINT, [](int) { interrupted.store(true); });
  std::signal(SIGTERM, [](int) { interrupted.store(true); });

  const auto start = Clock::now();
  auto created = api->createSession(*spec);
  const auto submitMillis = millisSince(start);
  if (!created) return context.fail(created.error()), kExitRunFailed;
  client::Session session = *created;
  LogFollower logs(*api, session.id);
  Spinner spinner(!context.json);
  bool streaming = !context.json;
  const bool interactive = spec->openStdin || spec->tty;
  while (!session.isFinal()) {
    if (interrupted.load()) {
      spinner.clear();
      auto destroyed = api->destroySession(session.id);
      std::cerr << "bai: interrupted; " << (destroyed ? "destroyed session " + session.id
                                                      : "could not destroy session " + session.id + ": " +
                                                            destroyed.error().message())
                << "\n";
      return kExitInterrupted;
    }
    const bool running = session.status == "RUNNING" || session.status == "TERMINATING";
    if (running && interactive) {
      // The console replays what the session wrote before the attach: no log pump.
      spinner.clear();
      session.tty = spec->tty;  // as asked, whatever this manager's view says
      return followConsole(context, *api, session, true);
    }
    if (running) {
      spinner.clear();
      if (streaming && !logs.pump()) streaming = false;  // said once, below
    } else {
      spinner.show(session);
    }
    // The long poll answers at once when the session ends; the short wait keeps the
    // spinner and the log stream moving meanwhile.
    auto next = api->session(session.id, milliseconds(running ? 300 : 250));
    if (!next) {
      spinner.clear();
      return context.fail(next.error()), kExitRunFailed;
    }
    session = std::move(*next);
  }
  spinner.clear();
  const auto roundTripMillis = millisSince(start);
  if (streaming && !logs.pump()) streaming = false;
  // A session that never started has no logs to miss: its status reason alone says why.
  const bool started = session.startedAtMs != 0 || session.exitCode.has_value();
  if (!context.json && !streaming && started) std::cerr << "bai: the session's logs could not be read: " << logs.error().message() << "\n";
  if (context.json) std::cout << session.json << "\n";
  if (context.timing) printTiming(session, submitMillis, roundTripMillis);
  if (session.exitCode) return *session.exitCode;
  std::cerr << "bai: session " << session.id << " ended " << session.status
            << (session.statusReason.empty() ? "" : ": " + session.statusReason) << "\n";
  return kExitRunFailed;
}

int list(CommandContext& context, const std::string& status) {
  const client::Client* api = context.api();
  if (api == nullptr) return kExitUsage;
  auto sessions = api->listSessions(status);
  if (!sessions) return context.fail(sessions.error());
  if (context.json) {
    std::cout << jsonArray(*sessions) << "\n";
  } else {
    printSessions(*sessions, context);
  }
  return kExitOk;
}

int info(CommandContext& context, const std::string& id) {
  const client::Client* api = context.api();
  if (api == nullptr) return kExitUsage;
  auto s = api->session(id);
  if (!s) return context.fail(s.error());
  if (context.json) {
    std::cout << s->json << "\n";
  } else {
    std::string command, env;
    for (const auto& word : s->command) command += (command.empty() ? "" : " ") + word;
    for (const auto& [key, value] : s->env) env += (env.empty() ? "" : " ") + key + "=" + value;
    Table table({"FIELD", "VALUE"});
    table.add({"id", s->id});
    table.add({"name", s->name});
    table.add({"owner", s->owner});
    table.add({"status", s->status});
    table.add({"reason", s->statusReason});
    table.add({"scaling group", s->scalingGroup});
    table.add({"agent", s->agent.empty() ? "-" : s->agent});
    table.add({"resources", formatResources(s->resources, context.slotTypes())});
    table.add({"image", s->image.empty() ? "- (host process)" : s->image});
    table.add({"command", command.empty() && !s->image.empty() ? "(the image's own)" : command});
    table.add({"env", env});
    table.add({"console", s->tty ? "tty (bai session attach)" : s->openStdin ? "stdin (bai session attach)" : "-"});
    std::string services;
    for (const auto& service : s->servicePorts) {
      services += (services.empty() ? "" : ", ") + service.name + " " + service.protocol + ":" + std::to_string(service.port);
    }
    table.add({"services", services.empty() ? "-" : services + " (bai session app)"});
    std::string mounts;
    for (const auto& mount : s->mounts) {
      mounts += (mounts.empty() ? "" : ", ") + mount.folder + " -> " + mount.target + (mount.readOnly ? " (ro)" : "");
    }
    table.add({"mounts", mounts.empty() ? "-" : mounts});
    table.add({"last activity", formatAge(s->lastActivityAtMs)});
    table.add({"exit code", s->exitCode ? std::to_string(*s->exitCode) : "-"});
    table.add({"created", formatAge(s->createdAtMs)});
    table.print(std::cout);
  }
  if (context.timing) printTiming(*s, -1, -1);
  return kExitOk;
}

struct LogsOptions {
  std::string id;
  bool stderrStream = false;
  CLI::Option* tailOption = nullptr;  // given: print only the last `tail` lines
  std::uint64_t tail = 0;
  bool follow = false;
};

int logs(CommandContext& context, const LogsOptions& options) {
  const client::Client* api = context.api();
  if (api == nullptr) return kExitUsage;
  if (options.follow) {
    LogFollower follower(*api, options.id);
    while (true) {
      auto session = api->session(options.id, milliseconds(500));
      if (!session) return context.fail(session.error());
      if (!follower.pump()) return context.fail(follower.error());
      if (session->isFinal() || interrupted.load()) return kExitOk;
    }
  }
  const std::string stream = options.stderrStream ? "stderr" : "stdout";
  if (options.tailOption != nullptr && options.tailOption->count() > 0) {
    auto text = lastLines(*api, options.id, stream, options.tail);
    if (!text) return context.fail(text.error());
    std::cout << *text << std::flush;
    return kExitOk;
  }
  LogFollower reader(*api, options.id);
  if (!reader.copy(stream, std::cout)) return context.fail(reader.error());
  return kExitOk;
}

int destroy(CommandContext& context, const std::vector<std::string>& ids) {
  const client::Client* api = context.api();
  if (api == nullptr) return kExitUsage;
  int status = kExitOk;
  std::vector<client::Session> destroyed;
  for (const std::string& id : ids) {
    auto session = api->destroySession(id);
    if (!session) {
      status = std::max(status, context.fail(session.error()));
      continue;
    }
    destroyed.push_back(std::move(*session));
  }
  if (context.json) {
    std::cout << jsonArray(destroyed) << "\n";
  } else {
    for (const auto& session : destroyed) std::cout << session.id << " " << session.status << "\n";
  }
  return status;
}

}  // namespace

void addSessionCommands(CLI::App& app, CommandContext& context) {
  CLI::App* session = app.add_subcommand("session", "create, run, inspect and destroy sessions");
  session->require_subcommand(1);

  auto createOptions = std::make_shared<CreateOptions>();
  CLI::App* createCommand = session->add_subcommand("create", "submit a session and print its id (does not wait)");
  addCreateOptions(createCommand, *createOptions);
  createCommand->callback([&context, createOptions] { context.action = [&context, createOptions] { return create(context, *createOptions); }; });

  auto runOptions = std::make_shared<CreateOptions>();
  CLI::App* runCommand = session->add_subcommand(
      "run", "submit a session, wait for it, stream its output and exit with its exit code (125: it produced none);\n"
             "with -i/-t attach this terminal to it (Ctrl-P Ctrl-Q detaches from a -t session)");
  addCreateOptions(runCommand, *runOptions);
  runCommand->callback([&context, runOptions] { context.action = [&context, runOptions] { return run(context, *runOptions); }; });

  addInteractiveCommands(session, context);

  auto status = std::make_shared<std::string>();
  CLI::App* listCommand = session->add_subcommand("list", "list your sessions (an admin sees all)");
  listCommand->add_option("-s,--status", *status, "only sessions in this state (PENDING, RUNNING, TERMINATED, ...)");
  listCommand->callback([&context, status] { context.action = [&context, status] { return list(context, *status); }; });

  auto id = std::make_shared<std::string>();
  CLI::App* infoCommand = session->add_subcommand("info", "show one session");
  infoCommand->add_option("id", *id, "session id")->required();
  infoCommand->callback([&context, id] { context.action = [&context, id] { return info(context, *id); }; });

  auto logsOptions = std::make_shared<LogsOptions>();
  CLI::App* logsCommand = session->add_subcommand("logs", "print a session's output");
  logsCommand->add_option("id", logsOptions->id, "session id")->required();
  logsCommand->add_flag("--stderr", logsOptions->stderrStream, "the standard error stream instead of standard output");
  logsOptions->tailOption = logsCommand->add_option("--tail", logsOptions->tail, "only the last N lines");
  logsCommand->add_flag("-f,--follow", logsOptions->follow, "keep printing both streams until the session ends");
  logsCommand->callback([&context, logsOptions] { context.action = [&context, logsOptions] { return logs(context, *logsOptions); }; });

  auto ids = std::make_shared<std::vector<std::string>>();
  CLI::App* destroyCommand = session->add_subcommand("destroy", "stop sessions and free their resources");
  destroyCommand->add_option("ids", *ids, "session ids")->required();
  destroyCommand->callback([&context, ids] { context.action = [&context, ids] { return destroy(context, *ids); }; });
}

}  // namespace bai::cli
