#include "check/plugin_checker.hpp"

#include "alloc/node_allocator.hpp"
#include "check/check_session.hpp"
#include "parse_json.hpp"
#include "plugin/plugin_host.hpp"

#include <nlohmann/json.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace bai::core {
namespace {

using Clock = std::chrono::steady_clock;

// The smallest grantable amount of a map: one unit, one quantum, one slice.
Quantity smallestAmount(const AllocMap& map) {
  if (map.isFraction()) return static_cast<const FractionAllocMap&>(map).quantum();
  return Quantity(1);
}

Result<void> roundTrip(CheckSession& session) {
  auto maps = buildMaps(session.discovery());
  if (!maps) return problem("alloc_map_spec: " + maps.error().message);
  for (auto& map : *maps) {
    const Quantity largest = map->largestAllocatable();
    if (largest.isZero()) continue;
    const Quantity amount = map->slotType() == SlotType::Unique ? Quantity(1) : largest;
    auto grants = map->allocate(amount);
    if (!grants) {
      return problem("expected the map for '" + map->slot().str() + "' to grant its largest allocatable amount " +
                     amount.toString() + ", got " + grants.error().message);
    }
    Quantity granted;
    for (const DeviceGrant& g : *grants) granted += g.amount;
    if (granted != amount) return problem("granted " + granted.toString() + " of " + amount.toString());
    if (map->slotType() != SlotType::Unique) {
      auto over = map->allocate(smallestAmount(*map));
      if (map->largestAllocatable().isZero() && over) {
        return problem("the map for '" + map->slot().str() + "' granted more than its capacity");
      }
      if (over) (void)map->free(*over);
    }
    if (auto freed = map->free(*grants); !freed) return problem(freed.error().message);
    if (!map->allocatedTotal().isZero()) return problem("the map for '" + map->slot().str() + "' did not return to empty");
  }
  return {};
}

// An allocation of the smallest amount on the first map with room, as the ABI's session document.
std::map<std::string, std::map<std::string, Quantity>> smallAllocation(const Discovery& discovery) {
  std::map<std::string, std::map<std::string, Quantity>> allocation;
  auto maps = buildMaps(discovery);
  if (!maps) return allocation;
  for (auto& map : *maps) {
    auto grants = map->allocate(smallestAmount(*map));
    if (!grants) continue;
    for (const DeviceGrant& g : *grants) allocation[map->slot().str()][map->deviceId(g.device)] = g.amount;
    break;
  }
  return allocation;
}

// prepare_session's answer for `document`, held to its schema and to the rules the agent
// reads it by (readSessionResources), as the agent would: a failure names the plugin, the
// call and the key. Device nodes are not looked up here: the checking machine is rarely
// the node, and the agent refuses a session whose node is missing.
Result<nlohmann::json> checkedPrepare(CheckSession& session, const std::string& document) {
  const std::string plugin = "plugin " + session.identity().name + ": ";
  auto prepared = session.callWith("prepare_session", session.vtable().prepare_session, session.instance(), document);
  if (!prepared) return problem(plugin + prepared.error().message + " for " + document);
  if (auto resources = readSessionResources(*prepared); !resources) {
    return problem(plugin + "prepare_session: " + resources.error().message + " for " + document);
  }
  const std::uint32_t claimed = session.identity().abiMinor;
  if (PayloadAbi used = newestAbiUsedBy(*prepared); used.minor > claimed) {
    return problem(plugin + "prepare_session: " + used.key + " came with ABI 1." + std::to_string(used.minor) +
                   ", but the info record says 1." + std::to_string(claimed) + ", whose agents refuse it: build with " +
                   "the SDK of 1." + std::to_string(used.minor) + " or later");
  }
  return prepared;
}

Result<void> prepareRelease(CheckSession& session) {
  const auto& vt = session.vtable();
  if (vt.prepare_session == nullptr || vt.release_session == nullptr) {
    return problem("prepare_session and release_session must both be implemented");
  }
  for (const auto& allocation : {smallAllocation(session.discovery()), std::map<std::string, std::map<std::string, Quantity>>{}}) {
    const std::string id = allocation.empty() ? "bai-plugin-check-empty" : "bai-plugin-check-1";
    const std::string document = sessionDocument(id, allocation);
    if (auto prepared = checkedPrepare(session, document); !prepared) return Failure{prepared.error()};
    const bai_status released = vt.release_session(session.instance(), document.c_str());
    if (released != BAI_OK) {
      return problem("expected release_session to undo prepare_session with BAI_OK, got " + describeStatus(released) +
                     " for " + document);
    }
  }
  return {};
}

// accelerator.h: preparing a session id that is prepared already returns
// BAI_ERR_INVALID_ARGUMENT (the agent never does it; a plugin that accepts it would hand
// the same devices out twice or lose the first grant).
Result<void> secondPrepareRefused(CheckSession& session) {
  const auto& vt = session.vtable();
  const std::string document = sessionDocument("bai-plugin-check-twice", smallAllocation(session.discovery()));
  if (auto first = checkedPrepare(session, document); !first) return Failure{first.error()};
  const bai_status second = session.statusOf(vt.prepare_session, session.instance(), document);
  const bai_status released = vt.release_session(session.instance(), document.c_str());
  if (second != BAI_ERR_INVALID_ARGUMENT) {
    return problem("expected a second prepare_session for session 'bai-plugin-check-twice', prepared and not yet "
                   "released, to return BAI_ERR_INVALID_ARGUMENT, got " + describeStatus(second));
  }
  if (released != BAI_OK) {
    return problem("expected release_session to undo prepare_session with BAI_OK, got " + describeStatus(released) +
                   " for " + document);
  }
  return {};
}

// accelerator.h: releasing a session id the instance does not hold returns
// BAI_ERR_NOT_FOUND: an agent that restarted may release what an earlier instance prepared.
Result<void> unknownReleaseNotFound(CheckSession& session) {
  const std::string document = sessionDocument("bai-plugin-check-never-prepared", {});
  const bai_status released = session.vtable().release_session(session.instance(), document.c_str());
  if (released != BAI_ERR_NOT_FOUND) {
    return problem("expected release_session of session 'bai-plugin-check-never-prepared', which was never prepared, "
                   "to return BAI_ERR_NOT_FOUND, got " + describeStatus(released));
  }
  return {};
}

Result<void> healthCheck(CheckSession& session) {
  auto health = session.call("health", session.vtable().health, session.instance());
  if (!health) return Failure{health.error()};
  std::set<std::string> known;
  for (const DeviceInfo& d : session.discovery().devices) known.insert(d.id);
  for (const auto& d : (*health)["devices"]) {
    if (known.count(d["id"]) == 0) return problem("health reports device '" + d["id"].get<std::string>() + "', which list_devices did not list");
  }
  return {};
}

long residentKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

Result<void> createDestroyCycles(CheckSession& session, int cycles) {
  long before = 0;
  for (int i = 0; i < cycles; ++i) {
    auto instance = session.create();
    if (!instance) return problem("cycle " + std::to_string(i + 1) + ": " + instance.error().message);
    if (auto listed = session.call("list_devices", session.vtable().list_devices, *instance); !listed) {
      return problem("cycle " + std::to_string(i + 1) + ": " + listed.error().message);
    }
    session.destroy(*instance);
    if (i == 9) before = residentKiB();  // after warm-up: allocator pools, lazy init
  }
  const long growth = residentKiB() - before;
  if (growth > 16 * 1024) {
    return problem("resident memory grew by " + std::to_string(growth) + " KiB over " + std::to_string(cycles - 10) +
                   " create/destroy cycles: destroy must release what create took");
  }
  return {};
}

Result<void> twoThreads(CheckSession& session) {
  auto first = session.create();
  auto second = session.create();
  if (!first || !second) return problem("could not create two instances at once: " + (first ? second : first).error().message);
  std::string failure;
  std::mutex failureMutex;
  auto hammer = [&](bai_accelerator* instance) {
    std::string expected;
    for (int i = 0; i < 50; ++i) {
      auto devices = session.call("list_devices", session.vtable().list_devices, instance);
      auto health = session.call("health", session.vtable().health, instance);
      std::lock_guard<std::mutex> lock(failureMutex);
      if (!devices || !health) {
        failure = !devices ? devices.error().message : health.error().message;
        return;
      }
      const std::string now = devices->dump();
      if (i == 0) expected = now;
      if (now != expected) failure = "list_devices changed between calls on one instance while another thread used a second one";
    }
  };
  std::thread a(hammer, *first), b(hammer, *second);
  a.join();
  b.join();
  if (!failure.empty()) return problem(failure);
  return {};
}

Result<void> createOnce(CheckSession& session, const CheckerOptions&) {
  auto instance = session.create();
  if (!instance) return Failure{instance.error()};
  session.destroy(*instance);
  return {};
}

Result<void> nodeMeasures(CheckSession& session, const CheckerOptions&) {
  if (auto measured = session.call("node_measures", session.vtable().node_measures, session.instance()); !measured) {
    return Failure{measured.error()};
  }
  return {};
}

Result<void> unknownConfigKey(CheckSession& session, const CheckerOptions& options) {
  auto parsed = parseJson(options.configJson);
  nlohmann::json config = parsed && parsed->is_object() ? std::move(*parsed) : nlohmann::json::object();
  config["bai_plugin_check_unknown_key"] = {{"nested", {1, 2}}};
  const std::size_t logsBefore = session.logs().size();
  auto instance = session.create(config.dump());
  if (instance) {
    session.destroy(*instance);
    return {};  // tolerating an unknown key is allowed
  }
  if (instance.error().message.find("BAI_ERR_INVALID_ARGUMENT") == std::string::npos) {
    return problem("expected an unknown config key to be accepted or refused with BAI_ERR_INVALID_ARGUMENT; " +
                   instance.error().message);
  }
  if (session.logs().size() == logsBefore) {
    return problem("create refused a config with an unknown key but logged no reason: say which key is wrong");
  }
  return {};
}

Result<void> withinDeadlines(CheckSession& session, const CheckerOptions& options) {
  if (auto measured = nodeMeasures(session, options); !measured) return measured;
  if (auto health = session.call("health", session.vtable().health, session.instance()); !health) {
    return Failure{health.error()};
  }
  for (const auto& [call, ms] : session.slowest()) {
    if (ms > static_cast<double>(options.deadline.count())) {
      return problem(call + " took " + std::to_string(static_cast<long>(ms)) + " ms, over the " +
                     std::to_string(options.deadline.count()) + " ms deadline the agent enforces");
    }
  }
  return {};
}

using CheckRun = std::function<Result<void>(CheckSession&, const CheckerOptions&)>;

struct Check {
  const char* name;
  const char* doc;
  std::vector<const char*> needs;
  CheckRun run;
};

// `body` after the discovery calls up to `last` ("" for none: the call table alone).
CheckRun startingFrom(std::string last, CheckRun body = {}) {
  return [last = std::move(last), body = std::move(body)](CheckSession& s, const CheckerOptions& o) -> Result<void> {
    if (auto ready = last.empty() ? s.openCallTable() : s.ready(last); !ready) return ready;
    return body ? body(s, o) : Result<void>{};
  };
}

// Adapts a check that needs the session alone.
CheckRun sessionOnly(Result<void> (*body)(CheckSession&)) {
  return [body](CheckSession& s, const CheckerOptions&) { return body(s); };
}

std::vector<Check> allChecks() {
  using S = CheckSession;
  using O = CheckerOptions;
  return {
      {"info-record", "identity", {}, [](S& s, const O&) { return s.open(); }},
      {"abi-version", "abi-versions", {"info-record"}, startingFrom("")},
      {"create", "create-and-config", {"abi-version"}, startingFrom("", createOnce)},
      {"describe", "describe", {"create"}, startingFrom("describe")},
      {"list-devices", "list_devices", {"create"}, startingFrom("list_devices")},
      {"slot-types", "slots-and-the-key-prefix", {"describe", "list-devices"}, startingFrom("slot_types")},
      {"alloc-map-spec", "allocation-maps", {"slot-types"}, startingFrom("alloc_map_spec")},
      {"allocation-round-trip", "allocation-maps", {"alloc-map-spec"},
       startingFrom("alloc_map_spec", sessionOnly(roundTrip))},
      {"prepare-release", "what-a-session-receives", {"alloc-map-spec"},
       startingFrom("alloc_map_spec", sessionOnly(prepareRelease))},
      {"prepare-twice", "what-a-session-receives", {"prepare-release"},
       startingFrom("alloc_map_spec", sessionOnly(secondPrepareRefused))},
      {"release-unknown", "what-a-session-receives", {"prepare-release"},
       startingFrom("alloc_map_spec", sessionOnly(unknownReleaseNotFound))},
      {"node-measures", "measures", {"create"}, startingFrom("describe", nodeMeasures)},
      {"health", "health", {"list-devices"}, startingFrom("list_devices", sessionOnly(healthCheck))},
      {"create-destroy-cycles", "create-and-config", {"list-devices"},
       startingFrom("", [](S& s, const O& o) { return createDestroyCycles(s, o.cycles); })},
      {"two-threads", "threading", {"list-devices"}, startingFrom("", sessionOnly(twoThreads))},
      {"bad-config", "create-and-config", {"create"}, startingFrom("", unknownConfigKey)},
      {"deadlines", "threading", {"alloc-map-spec"}, startingFrom("alloc_map_spec", withinDeadlines)},
  };
}

// Runs `check` in a child process; a crash, a hang or an exit without a verdict fails it.
CheckResult runForked(const Check& check, const CheckerOptions& options) {
  CheckResult result{check.name, CheckStatus::Fail, "", std::string("docs/plugin-guide.md#") + check.doc, 0};
  const auto start = Clock::now();
  int fds[2];
  if (pipe(fds) != 0) {
    result.reason = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  const pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    std::string verdict;
    {
      CheckSession session(options);
      auto outcome = check.run(session, options);
      verdict = outcome ? "P" : "F" + outcome.error().message;
    }
    (void)!write(fds[1], verdict.data(), verdict.size());
    _exit(0);
  }
  close(fds[1]);
  std::string verdict;
  const auto limit = options.deadline * 2 + std::chrono::milliseconds(check.name == std::string("create-destroy-cycles")
                                                                          ? 60000 : 2000);
  bool timedOut = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(limit - (Clock::now() - start)).count();
    if (left <= 0) {
      timedOut = true;
      break;
    }
    pollfd pfd{fds[0], POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
    char buffer[4096];
    const ssize_t n = read(fds[0], buffer, sizeof buffer);
    if (n <= 0) break;
    verdict.append(buffer, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  if (timedOut) kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  result.millis = millisSince(start);
  if (timedOut) {
    result.reason = "did not finish within " + std::to_string(limit.count()) +
                    " ms: a call hung (the agent gives each call " + std::to_string(options.deadline.count()) + " ms)";
  } else if (WIFSIGNALED(status)) {
    result.reason = std::string("the plugin crashed the process with ") + strsignal(WTERMSIG(status));
  } else if (verdict.empty()) {
    result.reason = "the check ended without a verdict (the plugin exited the process?)";
  } else if (verdict[0] == 'P') {
    result.status = CheckStatus::Pass;
  } else {
    result.reason = verdict.substr(1);
  }
  return result;
}

}  // namespace

const char* checkStatusName(CheckStatus status) {
  switch (status) {
    case CheckStatus::Pass: return "PASS";
    case CheckStatus::Fail: return "FAIL";
    case CheckStatus::Skip: return "SKIP";
  }
  return "?";
}

std::vector<CheckResult> runPluginChecks(const CheckerOptions& options) {
  std::vector<CheckResult> results;
  std::set<std::string> passed;
  for (const Check& check : allChecks()) {
    std::vector<std::string> missing;
    for (const char* need : check.needs) {
      if (passed.count(need) == 0) missing.push_back(need);
    }
    if (!missing.empty()) {
      std::string list;
      for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
      results.push_back({check.name, CheckStatus::Skip, "needs " + list, std::string("docs/plugin-guide.md#") + check.doc, 0});
      continue;
    }
    results.push_back(runForked(check, options));
    if (results.back().status == CheckStatus::Pass) passed.insert(check.name);
  }
  return results;
}

std::string formatText(const std::vector<CheckResult>& results) {
  std::string out;
  int failed = 0, skipped = 0;
  for (const CheckResult& r : results) {
    char timing[32];
    std::snprintf(timing, sizeof timing, "%.1f ms", r.millis);
    out += std::string(checkStatusName(r.status)) + " " + r.check;
    if (r.status == CheckStatus::Pass) out += " (" + std::string(timing) + ")";
    if (!r.reason.empty()) out += ": " + r.reason;
    if (r.status == CheckStatus::Fail) out += " (see " + r.doc + ")";
    out += "\n";
    failed += r.status == CheckStatus::Fail;
    skipped += r.status == CheckStatus::Skip;
  }
  out += std::to_string(results.size() - static_cast<std::size_t>(failed + skipped)) + " passed, " +
         std::to_string(failed) + " failed, " + std::to_string(skipped) + " skipped\n";
  return out;
}

std::string formatJson(const std::filesystem::path& plugin, const std::vector<CheckResult>& results) {
  nlohmann::json checks = nlohmann::json::array();
  bool ok = true;
  for (const CheckResult& r : results) {
    checks.push_back({{"check", r.check}, {"status", checkStatusName(r.status)}, {"reason", r.reason}, {"doc", r.doc},
                      {"millis", r.millis}});
    ok &= r.status == CheckStatus::Pass;
  }
  return nlohmann::json{{"plugin", plugin.string()}, {"passed", ok}, {"checks", checks}}.dump(2) + "\n";
}

Result<nlohmann::json> showPlugin(const CheckerOptions& options, const std::map<std::string, std::string>& request) {
  CheckSession session(options);
  if (auto ready = session.ready("alloc_map_spec"); !ready) return Failure{ready.error()};
  const auto& vt = session.vtable();
  nlohmann::json out;
  for (const auto& [name, fn] : {std::pair{"describe", vt.describe}, std::pair{"list_devices", vt.list_devices}}) {
    auto document = session.call(name, fn, session.instance());
    if (!document) return Failure{document.error()};
    out[name] = std::move(*document);
  }
  if (request.empty()) return out;
  auto maps = buildMaps(session.discovery());
  if (!maps) return problem("alloc_map_spec: " + maps.error().message);
  std::map<std::string, std::map<std::string, Quantity>> allocation;
  for (const auto& [slot, text] : request) {
    auto amount = Quantity::parse(text);
    if (!amount) return problem("--session " + slot + "=" + text + ": " + amount.error().message);
    auto map = std::find_if(maps->begin(), maps->end(), [&](const auto& m) { return m->slot().str() == slot; });
    if (map == maps->end()) return problem("--session: the plugin offers no slot '" + slot + "'");
    auto grants = (*map)->allocate(*amount);
    if (!grants) return problem("--session " + slot + "=" + text + ": " + grants.error().message);
    for (const DeviceGrant& g : *grants) allocation[slot][(*map)->deviceId(g.device)] = g.amount;
  }
  const std::string document = sessionDocument("bai-plugin-check-show", allocation);
  auto prepared = session.callWith("prepare_session", vt.prepare_session, session.instance(), document);
  if (!prepared) return Failure{prepared.error()};
  out["session"] = {{"request", nlohmann::json::parse(document)}, {"prepared", std::move(*prepared)}};
  (void)vt.release_session(session.instance(), document.c_str());
  return out;
}

}  // namespace bai::core
