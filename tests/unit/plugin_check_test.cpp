// bai-plugin-check as a vendor runs it: the real binary on fixture plugins.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

struct CheckerRun {
  int exitCode = -1;
  std::string output;
};

CheckerRun check(const std::string& plugin, const std::string& extra = "") {
  const char* checker = std::getenv("BAI_PLUGIN_CHECK");
  const char* fixtures = std::getenv("BAI_FIXTURE_DIR");
  EXPECT_NE(checker, nullptr);
  EXPECT_NE(fixtures, nullptr);
  const std::string command = std::string(checker) + " " + fixtures + "/" + plugin + ".so --deadline-ms 300 --cycles 20 " +
                              extra + " 2>&1";
  CheckerRun run;
  FILE* pipe = popen(command.c_str(), "r");
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) run.output += buffer.data();
  const int status = pclose(pipe);
  run.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

void expectLine(const CheckerRun& run, const std::string& line) {
  EXPECT_NE(run.output.find(line), std::string::npos) << "missing: " << line << "\n" << run.output;
}

TEST(PluginCheck, PassesAWellBehavedPlugin) {
  CheckerRun run = check("good");
  EXPECT_EQ(run.exitCode, 0) << run.output;
  for (const char* name : {"info-record", "abi-version", "create", "describe", "list-devices", "slot-types",
                           "alloc-map-spec", "allocation-round-trip", "prepare-release", "prepare-twice",
                           "release-unknown", "node-measures", "health", "create-destroy-cycles", "two-threads",
                           "bad-config", "deadlines"}) {
    expectLine(run, std::string("PASS ") + name + " (");
  }
  expectLine(run, "17 passed, 0 failed, 0 skipped");
}

struct Expected {
  const char* fixture;
  const char* line;
};

class PluginCheckFails : public ::testing::TestWithParam<Expected> {};

TEST_P(PluginCheckFails, WithTheRightReason) {
  CheckerRun run = check(GetParam().fixture);
  EXPECT_EQ(run.exitCode, 1) << run.output;
  expectLine(run, GetParam().line);
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, PluginCheckFails,
    ::testing::Values(
        // The fixture's major is 2, its minor the SDK's (BAI_ACCELERATOR_ABI_MINOR).
        Expected{"wrong-major", "FAIL info-record: built for plugin ABI 2.2, this agent speaks 1.x (see docs/plugin-guide.md#identity)"},
        Expected{"not-a-plugin", "FAIL info-record: no bai_accelerator_info symbol"},
        Expected{"no-entry", "FAIL abi-version: no bai_accelerator_entry symbol"},
        Expected{"small-table", "FAIL abi-version: call table struct_size 16 is smaller than the ABI 1.0 table"},
        Expected{"create-fails", "FAIL create: expected create to return BAI_OK, got BAI_ERR_UNAVAILABLE; the plugin logged: \"fixture: the device driver is not loaded\""},
        Expected{"garbage-json", "FAIL list-devices: list_devices returned invalid JSON: '{not json'"},
        Expected{"schema-violation", "FAIL list-devices: list_devices breaks docs/abi/list_devices.schema.json at /devices/0/numa_node: expected integer, got string"},
        Expected{"bad-prefix", "FAIL slot-types: slot_types: slot 'gpu.device' does not start with the plugin key 'prefix.'"},
        Expected{"throws", "FAIL list-devices: list_devices returned BAI_ERR_EXCEPTION"},
        Expected{"hangs", "FAIL list-devices: did not finish within"},
        Expected{"hangs-on-prepare", "FAIL prepare-release: did not finish within"},
        Expected{"prepares-twice",
                 "FAIL prepare-twice: expected a second prepare_session for session 'bai-plugin-check-twice', prepared "
                 "and not yet released, to return BAI_ERR_INVALID_ARGUMENT, got BAI_OK (see "
                 "docs/plugin-guide.md#what-a-session-receives)"},
        Expected{"releases-unknown",
                 "FAIL release-unknown: expected release_session of session 'bai-plugin-check-never-prepared', which "
                 "was never prepared, to return BAI_ERR_NOT_FOUND, got BAI_OK (see "
                 "docs/plugin-guide.md#what-a-session-receives)"}));

TEST(PluginCheck, AHungCallIsReportedWithTheAgentsDeadline) {
  CheckerRun run = check("hangs");
  expectLine(run, "FAIL list-devices: did not finish within 2600 ms: a call hung (the agent gives each call 300 ms)");
}

TEST(PluginCheck, EachSessionContractBreachFailsOnlyItsOwnCheck) {
  CheckerRun twice = check("prepares-twice");
  expectLine(twice, "PASS prepare-release (");
  expectLine(twice, "PASS release-unknown (");
  expectLine(twice, "16 passed, 1 failed, 0 skipped");
  CheckerRun unknown = check("releases-unknown");
  expectLine(unknown, "PASS prepare-twice (");
  expectLine(unknown, "16 passed, 1 failed, 0 skipped");
}

TEST(PluginCheck, SkipsWhatDependsOnAFailure) {
  CheckerRun run = check("create-fails");
  expectLine(run, "SKIP describe: needs create");
  expectLine(run, "SKIP alloc-map-spec: needs slot-types");
}

TEST(PluginCheck, JsonReportForCi) {
  CheckerRun run = check("bad-prefix", "--json");
  EXPECT_EQ(run.exitCode, 1);
  nlohmann::json report = nlohmann::json::parse(run.output, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << run.output;
  EXPECT_FALSE(report["passed"].get<bool>());
  bool found = false;
  for (const auto& c : report["checks"]) {
    if (c["check"] == "slot-types") {
      found = true;
      EXPECT_EQ(c["status"], "FAIL");
      EXPECT_EQ(c["doc"], "docs/plugin-guide.md#slots-and-the-key-prefix");
    }
  }
  EXPECT_TRUE(found);
}

TEST(PluginCheck, ShowsWhatThePluginReportsAndWhatASessionGets) {
  CheckerRun shown = check("good", "--show --session acme.device=1");
  ASSERT_EQ(shown.exitCode, 0) << shown.output;
  const auto document = nlohmann::json::parse(shown.output, nullptr, false);
  ASSERT_FALSE(document.is_discarded()) << shown.output;
  EXPECT_EQ(document["list_devices"]["devices"][0]["id"], "a0");
  EXPECT_EQ(document["session"]["request"]["allocation"]["acme.device"]["a0"], "1") << "granted by the plugin's own map";
  EXPECT_TRUE(document["session"]["prepared"].is_object());

  CheckerRun tooMuch = check("good", "--show --session acme.device=2");
  EXPECT_EQ(tooMuch.exitCode, 1);
  expectLine(tooMuch, "acme.device");
  CheckerRun unknown = check("good", "--show --session gpu.device=1");
  EXPECT_EQ(unknown.exitCode, 1);
  expectLine(unknown, "the plugin offers no slot 'gpu.device'");
  EXPECT_EQ(check("good", "--show --session acme.device").exitCode, 2);
}

TEST(PluginCheck, RefusesAMissingPluginFile) {
  CheckerRun run = check("does-not-exist");
  EXPECT_NE(run.exitCode, 0);
  EXPECT_NE(run.output.find("does-not-exist"), std::string::npos) << run.output;
}

// ---- prepare_session payloads, through the mock plugin's session_extra -------------------

bool mockBuilt() { return std::getenv("BAI_MOCK_PLUGIN") != nullptr; }

// bai-plugin-check on the real mock plugin (BAI_MOCK_PLUGIN) with one GPU whose node is
// /dev/null and `sessionExtra` added to every prepare_session answer.
CheckerRun checkMock(const nlohmann::json& sessionExtra) {
  const char* checker = std::getenv("BAI_PLUGIN_CHECK");
  const char* mock = std::getenv("BAI_MOCK_PLUGIN");
  EXPECT_NE(checker, nullptr);
  if (checker == nullptr || mock == nullptr) return {};
  nlohmann::json config = {{"key", "cuda"},
                           {"devices", {{{"uuid", "GPU-0"}, {"model", "M"}, {"sm_count", 8}, {"memory", "8g"},
                                         {"device_node", "/dev/null"}}}}};
  if (!sessionExtra.empty()) config["session_extra"] = sessionExtra;
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("bai-check-mock-" + std::to_string(::getpid()) + ".json");
  std::ofstream(file) << config.dump();
  const std::string command = std::string(checker) + " " + mock + " --config " + file.string() +
                              " --deadline-ms 2000 --cycles 20 2>&1";
  CheckerRun run;
  FILE* pipe = popen(command.c_str(), "r");
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) run.output += buffer.data();
  const int status = pclose(pipe);
  run.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::filesystem::remove(file);
  return run;
}

TEST(PluginCheckPayloads, AcceptsEveryDocumentedKey) {
  if (!mockBuilt()) GTEST_SKIP() << "built without the mock plugin";
  CheckerRun run = checkMock({{"limits", {{"cpuset", "0-1"}, {"mems", "0"}, {"memory", "1073741824"}, {"cpu_quota", "1.5"}}},
                              {"cdi_devices", {"nvidia.com/gpu=GPU-0", "nvidia.com/gpu=0:1"}},
                              {"mounts", {{{"source", "/usr/share"}, {"target", "/opt/share"}, {"read_only", true}}}},
                              {"devices", {"/dev/zero", {{"path", "/dev/full"}, {"type", "c"}, {"major", 1}, {"minor", 7},
                                                         {"access", "rwm"}}}}});
  EXPECT_EQ(run.exitCode, 0) << run.output;
  expectLine(run, "PASS prepare-release (");
}

struct BadPayload {
  const char* name;
  nlohmann::json sessionExtra;
  const char* line;
};

std::ostream& operator<<(std::ostream& out, const BadPayload& bad) { return out << bad.name; }

class PluginCheckBadPayload : public ::testing::TestWithParam<BadPayload> {};

// Each failure names the plugin, the call and the key, as the agent's refusal would.
TEST_P(PluginCheckBadPayload, FailsPrepareReleaseNamingPluginCallAndKey) {
  if (!mockBuilt()) GTEST_SKIP() << "built without the mock plugin";
  CheckerRun run = checkMock(GetParam().sessionExtra);
  EXPECT_EQ(run.exitCode, 1) << run.output;
  expectLine(run, GetParam().line);
}

INSTANTIATE_TEST_SUITE_P(
    Payloads, PluginCheckBadPayload,
    ::testing::Values(
        BadPayload{"unknown_limit", {{"limits", {{"gpu_mem", "1g"}}}},
                   "FAIL prepare-release: plugin mock: prepare_session breaks docs/abi/prepare_session.schema.json at "
                   "/limits: unexpected member \"gpu_mem\""},
        BadPayload{"memory_not_bytes", {{"limits", {{"memory", "8g"}}}},
                   "FAIL prepare-release: plugin mock: prepare_session breaks docs/abi/prepare_session.schema.json at "
                   "/limits/memory: expected text matching"},
        BadPayload{"relative_device", {{"devices", {"dev/null"}}},
                   "FAIL prepare-release: plugin mock: prepare_session breaks docs/abi/prepare_session.schema.json at "
                   "/devices/1: expected text matching"},
        BadPayload{"unknown_device_key", {{"devices", {{{"path", "/dev/zero"}, {"mode", "0666"}}}}},
                   "FAIL prepare-release: plugin mock: prepare_session breaks docs/abi/prepare_session.schema.json at "
                   "/devices/1: unexpected member \"mode\""},
        BadPayload{"type_without_numbers", {{"devices", {{{"path", "/dev/zero"}, {"type", "c"}}}}},
                   "FAIL prepare-release: plugin mock: prepare_session: devices[1] (/dev/zero): type, major and minor "
                   "come together or not at all"},
        BadPayload{"access_twice", {{"devices", {{{"path", "/dev/zero"}, {"access", "rr"}}}}},
                   "FAIL prepare-release: plugin mock: prepare_session: devices[1].access: expected a non-empty subset "
                   "of \"rwm\", got \"rr\""},
        BadPayload{"mount_without_absolute_source", {{"mounts", {{{"source", "data"}, {"target", "/data"}}}}},
                   "FAIL prepare-release: plugin mock: prepare_session breaks docs/abi/prepare_session.schema.json at "
                   "/mounts/0/source"},
        BadPayload{"cdi_device_without_a_domain", {{"cdi_devices", {"nvidia/gpu=0"}}},
                   "FAIL prepare-release: plugin mock: prepare_session breaks docs/abi/prepare_session.schema.json at "
                   "/cdi_devices/0: expected text matching"},
        BadPayload{"cdi_device_not_a_string", {{"cdi_devices", {7}}},
                   "FAIL prepare-release: plugin mock: prepare_session breaks docs/abi/prepare_session.schema.json at "
                   "/cdi_devices/0: expected string"},
        BadPayload{"cpu_quota_a_number", {{"limits", {{"cpu_quota", 0.5}}}},
                   "FAIL prepare-release: plugin mock: prepare_session breaks docs/abi/prepare_session.schema.json at "
                   "/limits/cpu_quota: expected string"},
        BadPayload{"cpu_quota_under_the_minimum", {{"limits", {{"cpu_quota", "0.005"}}}},
                   "FAIL prepare-release: plugin mock: prepare_session: limits.cpu_quota: 0.005 is under 0.01 CPUs"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
