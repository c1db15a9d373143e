#include "agent/container_runtime.hpp"

#include "clock.hpp"
#include "runtime/docker_engine.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

namespace bai::core {

// One watched session: its log files and how far they are written.
struct ContainerRuntime::Watch {
  std::filesystem::path dir;
  std::optional<std::int64_t> memoryBytes;  // named when the OOM killer ends it
  std::mutex mutex;
  std::condition_variable cv;
  bool attached = false;     // its output comes through an attach made before its start
  bool preparing = false;    // its image is being pulled (guarded by the runtime's mutex)
  bool cancelled = false;    // destroyed while preparing (guarded by the runtime's mutex)
  bool outputEnded = false;  // the attach's stream ended
  std::uint64_t written[3] = {0, 0, 0};  // bytes in stdout.log (1) and stderr.log (2)
  int fds[3] = {-1, -1, -1};
  std::thread thread;
  std::shared_ptr<ContainerConsole> console;  // an interactive session's, while its attach lasts

  ~Watch() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }

  Result<void> openLogs() {
    const char* names[3] = {nullptr, "stdout.log", "stderr.log"};
    for (int stream : {1, 2}) {
      const std::filesystem::path file = dir / names[stream];
      fds[stream] = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fds[stream] < 0) return fail(ErrorCode::Internal, "cannot open " + file.string() + ": " + std::strerror(errno));
      struct stat st {};
      if (::fstat(fds[stream], &st) == 0) written[stream] = static_cast<std::uint64_t>(st.st_size);
    }
    return {};
  }

  // Appends `bytes` of `stream`, except the first `skip[stream]` bytes, which the file
  // already has (output read again from the engine after a restart or an outage).
  void append(int stream, std::string_view bytes, std::uint64_t* skip = nullptr) {
    if (stream != 1 && stream != 2) return;
    std::lock_guard<std::mutex> lock(mutex);
    if (skip != nullptr) {
      const std::uint64_t dropped = std::min<std::uint64_t>(skip[stream], bytes.size());
      skip[stream] -= dropped;
      bytes.remove_prefix(static_cast<std::size_t>(dropped));
    }
    while (!bytes.empty()) {
      const ssize_t n = ::write(fds[stream], bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // a full disk loses output, never the session
      written[stream] += static_cast<std::uint64_t>(n);
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
};

std::string containerNameOf(const std::string& sessionId) { return "bai-" + sessionId; }

ContainerSpec containerSpecFor(const LaunchSpec& spec, const ContainerSettings& settings, const std::string& agentId) {
  ContainerSpec c;
  c.name = containerNameOf(spec.sessionId);
  c.image = spec.image.value_or("");
  c.command = spec.command;
  c.env = spec.env;
  c.user = std::to_string(spec.owner.uid) + ":" + std::to_string(spec.owner.gid);
  c.workingDir = kSessionHome;
  c.labels = {{kSessionLabel, spec.sessionId}, {kAgentLabel, agentId}};
  c.tty = spec.tty;
  c.openStdin = spec.openStdin || spec.tty;
  const Isolation& isolation = spec.isolation;
  c.binds.push_back({isolation.sandbox.workDir, kSessionHome, false});
  c.binds.insert(c.binds.end(), isolation.containerMounts.begin(), isolation.containerMounts.end());
  c.devices = isolation.containerDevices;
  c.cdiDevices = isolation.cdiDevices;
  const SessionLimits& limits = isolation.limits;
  c.cpus = limits.cpus;
  c.mems = limits.mems;
  if (limits.memoryBytes) {
    c.memoryBytes = static_cast<std::int64_t>(*limits.memoryBytes);
    c.memorySwapBytes = static_cast<std::int64_t>(*limits.memoryBytes + limits.swapBytes);
  }
  if (limits.pidsMax) c.pidsLimit = static_cast<std::int64_t>(*limits.pidsMax);
  if (limits.cpuMillis) c.nanoCpus = static_cast<std::int64_t>(*limits.cpuMillis) * 1'000'000;
  c.capAdd = settings.capAdd;
  c.readonlyRootfs = settings.readonlyRootfs;
  c.init = settings.init;
  c.networkMode = settings.network;
  c.ulimits = settings.ulimits;
  c.ociRuntime = settings.ociRuntime;
  return c;
}

ContainerRuntime::ContainerRuntime(ContainerRuntimeOptions options, std::unique_ptr<ContainerEngine> engine)
    : options_(std::move(options)), engine_(std::move(engine)) {
  report_ = {protocol::kContainerRuntime, false, "not checked yet"};
  check();
  checker_ = std::thread([this] { checkLoop(); });
  killer_ = std::thread([this] { killLoop(); });
}

ContainerRuntime::~ContainerRuntime() {
  std::vector<std::shared_ptr<Watch>> watches;
  std::vector<std::thread> followers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (auto& [id, watch] : watches_) {
      watches.push_back(watch);
      if (watch->thread.joinable()) followers.push_back(std::move(watch->thread));
    }
  }
  wake_.notify_all();
  for (auto& watch : watches) {
    std::lock_guard<std::mutex> lock(watch->mutex);
    watch->cv.notify_all();
  }
  for (auto& watch : watches) {
    if (watch->console) watch->console->shutdown();
  }
  engine_->shutdown();  // ends the calls the threads are blocked in
  for (auto& thread : followers) thread.join();
  checker_.join();
  killer_.join();
  joinFinished();
}

protocol::RuntimeReport ContainerRuntime::report() const {
  std::lock_guard<std::mutex> lock(stateMutex_);
  return report_;
}

std::vector<protocol::ImageSummary> ContainerRuntime::images() const {
  std::lock_guard<std::mutex> lock(stateMutex_);
  return images_;
}

void ContainerRuntime::check() {
  const std::string where = "container engine at " + options_.settings.engineSocket.string();
  protocol::RuntimeReport next{protocol::kContainerRuntime, true, ""};
  std::vector<protocol::ImageSummary> images;
  std::string up;
  auto info = engine_->info();
  if (!info) {
    next = {protocol::kContainerRuntime, false, where + " is unreachable: " + info.error().message};
  } else if (auto listed = engine_->images(); !listed) {
    next = {protocol::kContainerRuntime, false, where + " cannot list images: " + listed.error().message};
  } else {
    for (const ImageRecord& image : *listed) {
      for (const auto& tag : image.repoTags) images.push_back({tag, image.id, image.sizeBytes});
    }
    up = where + ": " + engineFlavorName(info->flavor) + " " + info->version + " (API " + info->apiVersion + "), " +
         std::to_string(images.size()) + " image name(s)";
  }
  bool availabilityChanged = false, imagesChanged = false;
  {
    std::lock_guard<std::mutex> lock(stateMutex_);
    availabilityChanged = next.available != report_.available || (!next.available && next.reason != report_.reason);
    imagesChanged = images.size() != images_.size() ||
                    !std::equal(images.begin(), images.end(), images_.begin(), [](const auto& a, const auto& b) {
                      return a.name == b.name && a.id == b.id;
                    });
    report_ = next;
    images_ = std::move(images);
  }
  if (availabilityChanged) {
    if (next.available) options_.log(LogLevel::Info, "agent", up);
    else options_.log(LogLevel::Warning, "agent", "container runtime unavailable: " + next.reason +
                                                     "; process sessions are not affected");
  }
  if ((availabilityChanged || imagesChanged) && options_.changed) options_.changed();
}

void ContainerRuntime::checkLoop() {
  while (pause(options_.settings.checkInterval)) check();
}

bool ContainerRuntime::pause(std::chrono::milliseconds duration) {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait_for(lock, duration, [this] { return stopping_.load(); });
  return !stopping_;
}

void ContainerRuntime::killLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    if (kills_.empty()) {
      wake_.wait(lock);
      continue;
    }
    const auto due = kills_.begin()->first;
    if (Clock::now() < due) {
      wake_.wait_until(lock, due);
      continue;
    }
    const std::string id = kills_.begin()->second;
    kills_.erase(kills_.begin());
    if (watches_.count(id) == 0) continue;  // ended within its grace
    lock.unlock();
    if (auto killed = engine_->kill(containerNameOf(id), SIGKILL); !killed && killed.error().code != ErrorCode::NotFound) {
      options_.log(LogLevel::Warning, "agent", "session " + id + ": SIGKILL: " + killed.error().message);
    }
    lock.lock();
  }
}

Result<bool> ContainerRuntime::needsPull(const LaunchSpec& spec) {
  const std::string& image = *spec.image;
  if (spec.pullPolicy == protocol::PullPolicy::Always) return true;
  auto found = engine_->inspectImage(image);
  if (found) return false;
  const std::string onAgent = " on agent " + options_.agentId;
  if (found.error().code != ErrorCode::NotFound) {
    return fail(ErrorCode::Internal, "image " + image + onAgent + ": " + found.error().message);
  }
  if (spec.pullPolicy == protocol::PullPolicy::Never) {
    return fail(ErrorCode::NotFound, "image " + image + " not present" + onAgent + "; pull policy never");
  }
  return true;
}

Result<void> ContainerRuntime::pullImage(const LaunchSpec& spec) {
  const std::string& image = *spec.image;
  options_.log(LogLevel::Info, "agent", "session " + spec.sessionId + ": pulling image " + image);
  auto pulled = engine_->pullImage(image);
  if (!pulled) return fail(ErrorCode::NotFound, "pulling image " + image + " on agent " + options_.agentId +
                                                   " failed: " + pulled.error().message);
  check();  // its images changed
  return {};
}

Result<std::int64_t> ContainerRuntime::start(const LaunchSpec& spec) {
  joinFinished();
  if (!spec.image) return fail(ErrorCode::InvalidArgument, "a container session needs an image");
  if (const auto now = report(); !now.available) return fail(ErrorCode::Internal, now.reason);
  auto pull = needsPull(spec);
  if (!pull) return Failure{pull.error()};
  if (!*pull) {
    auto watch = std::make_shared<Watch>();
    if (auto launched = launch(spec, watch); !launched) return Failure{launched.error()};
    startFollowing(spec.sessionId, watch);
    return std::int64_t{0};
  }
  // A pull takes as long as the registry does: on a thread of its own, while the session
  // is PREPARING and the agent's RPC thread answers at once.
  auto watch = std::make_shared<Watch>();
  watch->preparing = true;
  std::lock_guard<std::mutex> lock(mutex_);
  watches_[spec.sessionId] = watch;
  watch->thread = std::thread([this, spec, watch] { pullThenRun(spec, watch); });
  return kStillPreparing;
}

void ContainerRuntime::pullThenRun(const LaunchSpec& spec, std::shared_ptr<Watch> watch) {
  Result<void> ready = pullImage(spec);
  bool cancelled = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled = watch->cancelled;
    watch->preparing = false;
  }
  if (stopping_) return;
  if (ready && cancelled) {
    return deliver(spec.sessionId, ExitStatus{128 + SIGTERM, SIGTERM, nowMillis(), true, ""});  // destroyed meanwhile
  }
  if (ready) ready = launch(spec, watch);
  if (!ready) return deliver(spec.sessionId, ExitStatus{-1, std::nullopt, nowMillis(), false, ready.error().message});
  if (options_.onStarted) options_.onStarted(spec.sessionId, 0);
  follow(spec.sessionId, watch);
}

Result<void> ContainerRuntime::launch(const LaunchSpec& spec, const std::shared_ptr<Watch>& watch) {
  const ContainerSpec container = containerSpecFor(spec, options_.settings, options_.agentId);
  auto created = engine_->create(container);
  if (!created && created.error().code == ErrorCode::Conflict) {
    // A retried create after a crash between create and start: that container never ran.
    (void)engine_->remove(container.name);
    created = engine_->create(container);
  }
  if (!created) {
    const ErrorCode code = created.error().code;
    return fail(code == ErrorCode::InvalidArgument || code == ErrorCode::NotFound ? code : ErrorCode::Internal,
                "creating its container: " + created.error().message);
  }
  watch->dir = spec.sessionDir;
  watch->memoryBytes = container.memoryBytes;
  watch->attached = true;
  if (auto opened = watch->openLogs(); !opened) {
    (void)engine_->remove(container.name);
    return Failure{opened.error()};
  }
  auto outputEnded = [watch](Result<void>) {
    std::lock_guard<std::mutex> lock(watch->mutex);
    watch->outputEnded = true;
    watch->cv.notify_all();
  };
  Result<void> attached;
  if (container.openStdin) {
    watch->console = std::make_shared<ContainerConsole>(
        spec.replayBytes, [this, name = container.name](stream::TerminalSize size) {
          return engine_->resize(name, size.rows, size.cols);
        });
    auto input = engine_->attachInteractive(
        container.name,
        [watch](int stream, std::string_view bytes) {
          watch->append(stream, bytes);
          watch->console->output(stream, bytes);
        },
        outputEnded);
    if (input) watch->console->setInput(std::move(*input));
    if (!input) attached = Failure{input.error()};
  } else {
    attached = engine_->attach(
        container.name, [watch](int stream, std::string_view bytes) { watch->append(stream, bytes); }, outputEnded);
  }
  if (!attached) {
    (void)engine_->remove(container.name);
    return fail(ErrorCode::Internal, "attaching to its container: " + attached.error().message);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    watches_[spec.sessionId] = watch;
  }
  if (auto started = engine_->start(container.name); !started) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!watch->thread.joinable()) watches_.erase(spec.sessionId);  // a pull's thread delivers instead
    }
    (void)engine_->remove(container.name);  // ends the attach
    // An engine that answered refused the container (its command, its devices): the
    // session's own failure. One that did not answer is this agent's.
    const ErrorCode code = isUnreachable(started.error()) ? ErrorCode::Internal : ErrorCode::InvalidArgument;
    return fail(code, "starting its container: " + started.error().message);
  }
  return {};
}

void ContainerRuntime::startFollowing(const std::string& sessionId, std::shared_ptr<Watch> watch) {
  std::lock_guard<std::mutex> lock(mutex_);
  watch->thread = std::thread([this, sessionId, watch] { follow(sessionId, watch); });
}

Result<void> ContainerRuntime::adopt(const std::string& sessionId, const std::filesystem::path& sessionDir) {
  auto watch = std::make_shared<Watch>();
  watch->dir = sessionDir;
  if (auto opened = watch->openLogs(); !opened) return opened;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (watches_.count(sessionId) != 0) return fail(ErrorCode::Conflict, "session " + sessionId + " is already followed");
    watches_[sessionId] = watch;
  }
  startFollowing(sessionId, watch);
  return {};
}

void ContainerRuntime::catchUpOutput(const std::string& name, Watch& watch, bool untilEnd) {
  std::uint64_t skip[3];
  {
    std::lock_guard<std::mutex> lock(watch.mutex);
    std::copy(std::begin(watch.written), std::end(watch.written), std::begin(skip));
  }
  // The engine's log of the container holds everything it wrote: what the files have is
  // skipped, the rest appended.
  (void)engine_->logs(name, untilEnd, [&](int stream, std::string_view bytes) { watch.append(stream, bytes, skip); });
}

void ContainerRuntime::follow(const std::string& sessionId, std::shared_ptr<Watch> watch) {
  const std::string name = containerNameOf(sessionId);
  if (watch->attached) {
    std::unique_lock<std::mutex> lock(watch->mutex);
    watch->cv.wait(lock, [&] { return watch->outputEnded || stopping_; });
  } else {
    catchUpOutput(name, *watch, true);
  }
  // The output ended: normally because the container did. The engine says whether it
  // did; if it runs on (the stream broke, or the engine restarted) its output is read
  // again from the engine's log and followed to the end.
  bool outageLogged = false;
  while (!stopping_) {
    auto state = engine_->inspect(name);
    if (stopping_) return;
    if (state && !state->running) return deliver(sessionId, exitOf(*state, watch->memoryBytes));
    if (!state && state.error().code == ErrorCode::NotFound) {
      return deliver(sessionId, ExitStatus{-1, std::nullopt, nowMillis(), false,
                                           "its container " + name + " is gone from the engine (removed, or lost "
                                           "in an engine restart)"});
    }
    if (!state) {
      if (!outageLogged) {
        options_.log(LogLevel::Warning, "agent", "session " + sessionId + ": " + state.error().message +
                                                     "; following it again when the engine answers");
        outageLogged = true;
      }
      if (!pause(std::chrono::seconds(1))) return;
      continue;
    }
    const auto followed = Clock::now();
    catchUpOutput(name, *watch, true);
    // A follow that ends at once while the container runs (an engine that closes it early)
    // must not spin.
    if (Clock::now() - followed < std::chrono::milliseconds(100) && !pause(std::chrono::milliseconds(100))) return;
  }
}

ExitStatus ContainerRuntime::exitOf(const ContainerState& state, std::optional<std::int64_t> memoryBytes) {
  ExitStatus status{state.exitCode, std::nullopt, state.finishedAtMillis > 0 ? state.finishedAtMillis : nowMillis(),
                    true, ""};
  // SIGKILLed: by the OOM killer, when the engine or else the kernel's log says so.
  const bool oom = state.oomKilled || (state.exitCode == 128 + SIGKILL && options_.oomLog &&
                                       options_.oomLog->killedIn(state.id, std::chrono::milliseconds(200)));
  if (oom) {
    status.error = "out of memory: the kernel's OOM killer ended the container at its memory limit";
    // Known for a container this agent started, not for one adopted after a restart.
    if (memoryBytes) status.error += " (" + std::to_string(*memoryBytes) + " bytes)";
  }
  if (status.exitCode > 128 && status.exitCode < 128 + 65) status.signal = status.exitCode - 128;
  return status;
}

void ContainerRuntime::deliver(const std::string& sessionId, const ExitStatus& status) {
  if (auto console = consoleOf(sessionId)) console->ended(status.recorded ? std::optional(status.exitCode) : std::nullopt, status.error);
  options_.onExit(sessionId, status);
  // Its end is journalled and its resources are free: the container goes.
  if (auto removed = engine_->remove(containerNameOf(sessionId)); !removed && removed.error().code != ErrorCode::NotFound) {
    options_.log(LogLevel::Warning, "agent", "session " + sessionId + ": removing its container: " +
                                                 removed.error().message + " (removed at the next start)");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = watches_.find(sessionId); it != watches_.end()) {
    if (it->second->thread.joinable()) finished_.push_back(std::move(it->second->thread));
    watches_.erase(it);
  }
}

void ContainerRuntime::joinFinished() {
  std::vector<std::thread> done;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done.swap(finished_);
  }
  for (auto& thread : done) {
    if (thread.get_id() != std::this_thread::get_id()) thread.join();
    else thread.detach();
  }
}

Result<void> ContainerRuntime::destroy(const std::string& sessionId, std::chrono::milliseconds grace) {
  const std::string name = containerNameOf(sessionId);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = watches_.find(sessionId);
    if (it == watches_.end()) return fail(ErrorCode::NotFound, "session " + sessionId + " is not running here");
    if (it->second->preparing) {  // its pull ends it instead of running it
      it->second->cancelled = true;
      return {};
    }
  }
  auto killed = engine_->kill(name, SIGTERM);
  // 404: gone already; 409: not running any more. Its follower reports either.
  if (!killed && killed.error().code != ErrorCode::NotFound && killed.error().code != ErrorCode::Conflict) {
    return fail(ErrorCode::Internal, "SIGTERM to its container: " + killed.error().message);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    kills_.emplace(Clock::now() + grace, sessionId);
  }
  wake_.notify_all();
  return {};
}

// The follower removes the container once the session's end is reported; a start that
// failed removed it at once.
Result<void> ContainerRuntime::release(const std::string&) { return {}; }

std::unique_ptr<SessionRuntime> makeContainerRuntime(ContainerRuntimeOptions options) {
  auto engine = makeDockerEngine(options.settings.engineSocket);
  if (!options.oomLog) {
    options.oomLog = std::make_shared<KernelOomLog>();
    if (!options.oomLog->available()) {
      options.log(LogLevel::Warning, "agent", "cannot read /dev/kmsg: a container the OOM killer ends is reported as "
                                              "out of memory only where its engine says so");
    }
  }
  return std::make_unique<ContainerRuntime>(std::move(options), std::move(engine));
}

void ContainerRuntime::sweep(const std::set<std::string>& active) {
  auto listed = engine_->list(kAgentLabel, options_.agentId);
  if (!listed) {
    options_.log(LogLevel::Warning, "agent", "cannot look for containers of ended sessions: " + listed.error().message);
    return;
  }
  for (const ContainerListing& container : *listed) {
    auto session = container.labels.find(kSessionLabel);
    const std::string id = session == container.labels.end() ? "" : session->second;
    if (active.count(id) != 0) continue;
    if (auto removed = engine_->remove(container.id); !removed && removed.error().code != ErrorCode::NotFound) {
      options_.log(LogLevel::Warning, "agent", "removing container " + container.name + ": " + removed.error().message);
      continue;
    }
    options_.log(LogLevel::Info, "agent", "removed container " + container.name + " (" + container.state +
                                              "): its session " + (id.empty() ? "(none)" : id) +
                                              " is not one this agent runs");
  }
}

std::shared_ptr<ContainerConsole> ContainerRuntime::consoleOf(const std::string& sessionId) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = watches_.find(sessionId);
  return it == watches_.end() ? nullptr : it->second->console;
}

Result<std::unique_ptr<SessionStream>> ContainerRuntime::attach(const std::string& sessionId, const std::filesystem::path&,
                                                                std::optional<stream::TerminalSize> size) {
  auto console = consoleOf(sessionId);
  if (!console) {
    return fail(ErrorCode::NotFound, "session " + sessionId + " has no console on this agent (not started with stdin, "
                                     "or adopted after an agent restart: its output is in its logs)");
  }
  return console->attach(size);
}

Result<std::unique_ptr<SessionStream>> ContainerRuntime::exec(const std::string& sessionId, const std::filesystem::path&,
                                                              const ExecRequest& request) {
  auto stream = startContainerExec(*engine_, containerNameOf(sessionId), request);
  if (!stream && stream.error().code == ErrorCode::Conflict) {
    return fail(ErrorCode::NotFound, "session " + sessionId + " is not running: " + stream.error().message);
  }
  return stream;
}

Result<ServiceEndpoint> ContainerRuntime::serviceEndpoint(const std::string& sessionId,
                                                          const std::vector<protocol::ServicePort>& declared,
                                                          const std::string& name) {
  auto state = engine_->inspect(containerNameOf(sessionId));
  if (!state) return Failure{state.error()};
  std::vector<protocol::ServicePort> services = declared;
  // The image's label (engines copy an image's labels onto its containers); a declared
  // service of the same name wins.
  if (auto label = state->labels.find(std::string(protocol::kServicePortsLabel)); label != state->labels.end()) {
    if (auto fromImage = protocol::parseServicePortList(label->second)) {
      for (auto& service : *fromImage) {
        if (!findService(services, sessionId, service.name)) services.push_back(std::move(service));
      }
    } else {
      options_.log(LogLevel::Warning, "agent", "session " + sessionId + ": its image's label " +
                                                   std::string(protocol::kServicePortsLabel) + ": " +
                                                   fromImage.error().message);
    }
  }
  auto service = findService(services, sessionId, name);
  if (!service) return Failure{service.error()};
  if (options_.settings.network == "host") return ServiceEndpoint{"127.0.0.1", service->port};
  if (state->ipAddress.empty()) {
    return fail(ErrorCode::Conflict, "session " + sessionId + "'s container has no network address (network '" +
                                         options_.settings.network + "')");
  }
  return ServiceEndpoint{state->ipAddress, service->port};
}

}  // namespace bai::core
