// The host against one fixture plugin per failure mode: it skips each with a clear
// reason, keeps the good ones, and survives hangs, throws and garbage.
#include "alloc/node_allocator.hpp"
#include "check/plugin_checker.hpp"
#include "plugin/plugin_host.hpp"
#include "../support/captured_log.hpp"

#include <bai/accelerator.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace bai::core {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

fs::path fixtureDir() {
  const char* dir = std::getenv("BAI_FIXTURE_DIR");
  return dir != nullptr ? fs::path(dir) : fs::path();
}

class PluginHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(fixtureDir().empty()) << "BAI_FIXTURE_DIR is not set";
    dir_ = fs::temp_directory_path() / ("bai-host-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Makes fixture `name` visible in this test's plugin directory.
  fs::path use(const std::string& name) {
    const fs::path target = dir_ / (name + ".so");
    fs::create_symlink(fixtureDir() / (name + ".so"), target);
    return target;
  }

  PluginHostOptions options(std::chrono::milliseconds deadline = 2000ms) {
    PluginHostOptions o;
    o.searchPath = {dir_};
    o.callDeadline = deadline;
    o.log = log_.sink();
    return o;
  }

  std::string logText() const { return log_.text(); }

  // Loads the fixture alone and expects it skipped with `reason` in its report and log.
  void expectSkipped(const std::string& fixture, const std::string& reason) {
    const fs::path file = use(fixture);
    PluginHost host(options());
    host.loadAll();
    EXPECT_TRUE(host.plugins().empty()) << fixture;
    ASSERT_EQ(host.skipped().size(), 1u) << logText();
    EXPECT_EQ(host.skipped()[0].file, file);
    EXPECT_NE(host.skipped()[0].reason.find(reason), std::string::npos) << host.skipped()[0].reason;
    const std::string log = logText();
    EXPECT_NE(log.find("error host: plugin " + file.string()), std::string::npos) << log;
    EXPECT_NE(log.find(reason), std::string::npos) << log;
  }

  fs::path dir_;
  bai::testing::CapturedLog log_;
};

TEST_F(PluginHostTest, LoadsAWellBehavedPlugin) {
  use("good");
  PluginHostOptions o = options();
  o.configFor = [](const std::string& name, const std::string& key) {
    return name == "good" && key == "acme" ? std::string(R"({"greeting": {"text": "hello from config"}})") : "{}";
  };
  PluginHost host(o);
  host.loadAll();
  ASSERT_EQ(host.plugins().size(), 1u) << logText();
  AcceleratorPlugin* plugin = host.find("acme");
  ASSERT_NE(plugin, nullptr);
  EXPECT_EQ(plugin->identity().name, "good");
  EXPECT_EQ(plugin->identity().vendor, "bai tests");
  EXPECT_EQ(plugin->identity().abiMajor, 1u);
  EXPECT_EQ(plugin->discovery().extraInfo["fixture"], "good");
  ASSERT_EQ(plugin->discovery().devices.size(), 1u);
  EXPECT_EQ(plugin->discovery().devices[0].model, "Acme NPU");
  EXPECT_EQ(plugin->discovery().devices[0].memory, Quantity(std::int64_t{16} << 30));
  ASSERT_EQ(plugin->discovery().slots.size(), 1u);
  EXPECT_EQ(plugin->discovery().slots[0].first.str(), "acme.device");
  // The plugin read its config through the host services table.
  EXPECT_NE(logText().find("plugin good: \"hello from config\""), std::string::npos) << logText();

  auto maps = plugin->buildMaps();
  ASSERT_TRUE(maps.ok()) << maps.error().message;
  ASSERT_EQ(maps->size(), 1u);
  EXPECT_EQ((*maps)[0]->numaNode(0), 0);
  EXPECT_EQ((*maps)[0]->capacityTotal(), Quantity(1));

  auto prepared = plugin->prepareSession("s1", {{"acme.device", {{"a0", Quantity(1)}}}});
  ASSERT_TRUE(prepared.ok()) << prepared.error().message;
  EXPECT_EQ(prepared->env.at("ACME_VISIBLE_DEVICES"), "a0");
  EXPECT_TRUE(plugin->releaseSession("s1", {{"acme.device", {{"a0", Quantity(1)}}}}).ok());
  auto health = plugin->health();
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->at(0).health, "healthy");
  EXPECT_TRUE(plugin->nodeMeasures().ok());
}

// The agent's host and bai-plugin-check answer a plugin's config_get from one
// implementation: dotted paths, plain keys and absent keys alike.
TEST_F(PluginHostTest, HostAndCheckerGiveAPluginTheSameConfig) {
  const fs::path file = use("config-echo");
  const std::string config = R"({"greeting": {"text": "hi"}, "limits": {"gpu": {"max_mem": "8g"}}, "missing.dot": 1})";
  PluginHostOptions o = options();
  o.configFor = [&](const std::string&, const std::string&) { return config; };
  PluginHost host(o);
  host.loadAll();
  AcceleratorPlugin* plugin = host.find("echo");
  ASSERT_NE(plugin, nullptr) << logText();
  const nlohmann::json throughHost = plugin->discovery().extraInfo;

  CheckerOptions checkerOptions;
  checkerOptions.plugin = file;
  checkerOptions.configJson = config;
  auto shown = showPlugin(checkerOptions, {});
  ASSERT_TRUE(shown.ok()) << shown.error().message;
  const nlohmann::json throughChecker = (*shown)["describe"]["extra_info"];

  const nlohmann::json expected = {{"greeting", {{"text", "hi"}}},
                                   {"greeting.text", "hi"},
                                   {"limits.gpu.max_mem", "8g"},
                                   {"missing", nullptr},
                                   {"greeting.missing", nullptr},
                                   {"", nullptr},
                                   {"limits..gpu", nullptr}};
  EXPECT_EQ(throughHost, expected);
  EXPECT_EQ(throughChecker, expected);
}

TEST_F(PluginHostTest, NewerMinorWithABiggerTableLoads) {
  use("newer-minor");
  PluginHost host(options());
  host.loadAll();
  ASSERT_EQ(host.plugins().size(), 1u) << logText();
  EXPECT_EQ(host.plugins()[0]->identity().key, "newer");
}

TEST_F(PluginHostTest, SkipsEachBrokenPluginWithItsReason) {
  // The fixture's major is 2, its minor the SDK's.
  expectSkipped("wrong-major",
                "built for plugin ABI 2." + std::to_string(BAI_ACCELERATOR_ABI_MINOR) + ", this agent speaks 1.x");
}
TEST_F(PluginHostTest, SkipsAMissingEntry) { expectSkipped("no-entry", "no bai_accelerator_entry symbol"); }
TEST_F(PluginHostTest, SkipsATableTooSmall) {
  expectSkipped("small-table", "call table struct_size 16 is smaller than the ABI 1.0 table");
}
TEST_F(PluginHostTest, SkipsAFailedCreate) { expectSkipped("create-fails", "create: failed with BAI_ERR_UNAVAILABLE"); }
TEST_F(PluginHostTest, SkipsGarbageJson) { expectSkipped("garbage-json", "list_devices: returned invalid JSON: '{not json'"); }
TEST_F(PluginHostTest, SkipsJsonThatBreaksTheSchema) {
  expectSkipped("schema-violation", "at /devices/0/numa_node: expected integer, got string");
}
TEST_F(PluginHostTest, SkipsSlotsWithoutTheKeyPrefix) {
  expectSkipped("bad-prefix", "slot 'gpu.device' does not start with the plugin key 'prefix.'");
}
TEST_F(PluginHostTest, SkipsAnExceptionThroughTheHelper) {
  expectSkipped("throws", "list_devices: failed with BAI_ERR_EXCEPTION");
  EXPECT_NE(logText().find("plugin throws: list_devices: exception: the device table is corrupt"), std::string::npos)
      << logText();
}
TEST_F(PluginHostTest, SkipsASharedObjectThatIsNoPlugin) {
  expectSkipped("not-a-plugin", "no bai_accelerator_info symbol: not a bai accelerator plugin");
}

TEST_F(PluginHostTest, ReportsTheLoadersReasonForAnUnloadableFile) {
  std::ofstream(dir_ / "broken.so") << "this is not an ELF file";
  PluginHost host(options());
  host.loadAll();
  ASSERT_EQ(host.skipped().size(), 1u);
  EXPECT_NE(host.skipped()[0].reason.find("cannot load"), std::string::npos);
  EXPECT_NE(host.skipped()[0].reason.find("broken.so"), std::string::npos);
  EXPECT_EQ(host.skipped()[0].reason.find("Bad file descriptor"), std::string::npos) << host.skipped()[0].reason;
}

TEST_F(PluginHostTest, AHangingPluginIsSkippedAtTheDeadline) {
  use("hangs");
  use("good");
  const auto start = std::chrono::steady_clock::now();
  PluginHost host(options(200ms));
  host.loadAll();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  ASSERT_EQ(host.plugins().size(), 1u) << logText();
  EXPECT_EQ(host.plugins()[0]->identity().name, "good");
  ASSERT_EQ(host.skipped().size(), 1u);
  EXPECT_NE(host.skipped()[0].reason.find("list_devices: did not return within 200 ms"), std::string::npos)
      << host.skipped()[0].reason;
}

TEST_F(PluginHostTest, APluginThatHangsLaterIsWithdrawn) {
  use("hangs-on-prepare");
  use("good");
  PluginHost host(options(200ms));
  host.loadAll();
  ASSERT_EQ(host.plugins().size(), 2u) << logText();
  AcceleratorPlugin* slow = host.find("slow");
  ASSERT_NE(slow, nullptr);
  auto prepared = slow->prepareSession("s1", {});
  ASSERT_FALSE(prepared.ok());
  EXPECT_NE(prepared.error().message.find("did not return within 200 ms; the plugin is withdrawn"), std::string::npos)
      << prepared.error().message;
  EXPECT_TRUE(slow->failed());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(slow->health().ok());  // refused at once, not after another deadline
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_TRUE(host.find("acme")->health().ok());  // the others keep serving
  ASSERT_EQ(host.plugins().size(), 2u) << "it stays listed while a thread may be inside it";

  // A rescan does not start the hung plugin again beside the failed instance.
  EXPECT_TRUE(host.loadAll().empty()) << logText();
  EXPECT_EQ(host.plugins().size(), 2u);
  // Unloading takes it out of the host altogether.
  EXPECT_EQ(host.unload(slow).get(), slow);
  EXPECT_EQ(host.find("slow"), nullptr);
  EXPECT_EQ(host.plugins().size(), 1u);
}

TEST_F(PluginHostTest, RefusesADuplicateKeyNamingBothFiles) {
  const fs::path first = use("good");
  const fs::path second = use("same-key");
  PluginHost host(options());
  host.loadAll();
  ASSERT_EQ(host.plugins().size(), 1u);
  EXPECT_EQ(host.plugins()[0]->identity().name, "good");
  ASSERT_EQ(host.skipped().size(), 1u);
  const std::string& reason = host.skipped()[0].reason;
  EXPECT_EQ(host.skipped()[0].file, second);
  EXPECT_NE(reason.find("device key 'acme' is already provided by " + first.string()), std::string::npos) << reason;
  EXPECT_NE(reason.find("allow only one of them"), std::string::npos) << reason;
}

TEST_F(PluginHostTest, AllowAndBlockListsByName) {
  use("good");
  use("newer-minor");
  // A host that has loaded the fixtures in use under these allow-plugins and block-plugins.
  const auto loadedWith = [&](std::vector<std::string> allow, std::vector<std::string> block) {
    PluginHostOptions o = options();
    o.allow = std::move(allow);
    o.block = std::move(block);
    auto host = std::make_unique<PluginHost>(o);
    host->loadAll();
    return host;
  };
  const auto allowedHost = loadedWith({"newer-minor"}, {});
  PluginHost& allowed = *allowedHost;
  ASSERT_EQ(allowed.plugins().size(), 1u);
  EXPECT_EQ(allowed.plugins()[0]->identity().name, "newer-minor");
  EXPECT_TRUE(allowed.skipped().empty());
  EXPECT_NE(logText().find("(good) not loaded: excluded by allow-plugins/block-plugins"), std::string::npos);

  const auto blockedHost = loadedWith({}, {"newer-minor"});
  PluginHost& blocked = *blockedHost;
  ASSERT_EQ(blocked.plugins().size(), 1u);
  EXPECT_EQ(blocked.plugins()[0]->identity().name, "good");
}

TEST_F(PluginHostTest, SurvivesEveryFixtureAtOnce) {
  for (const char* name : {"good", "same-key", "newer-minor", "small-table", "wrong-major", "no-entry", "create-fails",
                           "garbage-json", "schema-violation", "bad-prefix", "hangs", "throws", "not-a-plugin"}) {
    use(name);
  }
  std::ofstream(dir_ / "README.txt") << "not a plugin, not even a .so";
  PluginHostOptions o = options(300ms);
  o.searchPath.push_back(dir_ / "does-not-exist");
  PluginHost host(o);
  host.loadAll();
  std::vector<std::string> loaded;
  for (const auto& p : host.plugins()) loaded.push_back(p->identity().name);
  EXPECT_EQ(loaded, (std::vector<std::string>{"good", "newer-minor"})) << logText();
  EXPECT_EQ(host.skipped().size(), 11u) << logText();
  EXPECT_NE(logText().find("does-not-exist does not exist; skipped"), std::string::npos);
  EXPECT_NE(logText().find("2 accelerator plugin(s) loaded, 11 skipped"), std::string::npos) << logText();
}

// The leaking fixture is caught by valgrind, and the host itself leaks nothing.
TEST(PluginHostLeaks, ValgrindSeesThePluginsLeakAndNoneOfTheHosts) {
  const char* probe = std::getenv("BAI_PLUGIN_HOST_PROBE");
  ASSERT_NE(probe, nullptr);
  if (std::system("valgrind --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "valgrind is not installed";
  auto runUnderValgrind = [&](const std::string& fixture, const fs::path& log) {
    const fs::path dir = fs::temp_directory_path() / ("bai-leak-" + fixture + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::create_symlink(fixtureDir() / (fixture + ".so"), dir / (fixture + ".so"));
    const std::string command = "valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --keep-debuginfo=yes "
                                "--log-file=" + log.string() + " " + probe + " " + dir.string() + " > /dev/null";
    const int status = std::system(command.c_str());
    fs::remove_all(dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  auto read = [](const fs::path& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const fs::path leakLog = fs::temp_directory_path() / ("bai-leaks-" + std::to_string(::getpid()) + ".log");
  EXPECT_EQ(runUnderValgrind("leaks", leakLog), 99);
  const std::string leaks = read(leakLog);
  EXPECT_NE(leaks.find("definitely lost"), std::string::npos) << leaks;
  EXPECT_NE(leaks.find("fixture_create"), std::string::npos) << leaks;

  const fs::path cleanLog = fs::temp_directory_path() / ("bai-clean-" + std::to_string(::getpid()) + ".log");
  EXPECT_EQ(runUnderValgrind("good", cleanLog), 0) << read(cleanLog);
  fs::remove(leakLog);
  fs::remove(cleanLog);
}

}  // namespace
}  // namespace bai::core

namespace bai::core {
namespace {

// The real cpu and mock plugins next to broken fixtures: both load, the mock resolves its
// dynamic key, and one allocation spans them.
TEST(PluginHostWithRealPlugins, LoadsCpuAndMockBesideBrokenOnes) {
  const char* cpu = std::getenv("BAI_CPU_PLUGIN");
  const char* mock = std::getenv("BAI_MOCK_PLUGIN");
  const char* configs = std::getenv("BAI_MOCK_CONFIG_DIR");
  if (cpu == nullptr || mock == nullptr || configs == nullptr) GTEST_SKIP() << "built without the cpu or mock plugin";
  const fs::path dir = fs::temp_directory_path() / ("bai-real-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::create_symlink(cpu, dir / "cpu.so");
  fs::create_symlink(mock, dir / "mock.so");
  for (const char* broken : {"garbage-json", "wrong-major", "throws"}) {
    fs::create_symlink(fixtureDir() / (std::string(broken) + ".so"), dir / (std::string(broken) + ".so"));
  }
  PluginHostOptions options;
  options.searchPath = {dir};
  options.log = [](LogLevel, const std::string&, const std::string&) {};
  const std::string mockConfig = R"({"config_file": ")" + std::string(configs) + R"(/mock-4xa100.toml"})";
  options.configFor = [&](const std::string& name, const std::string&) { return name == "mock" ? mockConfig : "{}"; };
  PluginHost host(options);
  host.loadAll();
  ASSERT_NE(host.find("cpu"), nullptr);
  AcceleratorPlugin* cuda = host.find("cuda");
  ASSERT_NE(cuda, nullptr) << "the mock's dynamic key resolves to cuda";
  EXPECT_EQ(cuda->identity().name, "mock");
  EXPECT_EQ(cuda->discovery().devices.size(), 4u);
  EXPECT_EQ(host.skipped().size(), 3u);

  NodeAllocator allocator;
  for (const auto& plugin : host.plugins()) {
    auto maps = plugin->buildMaps();
    ASSERT_TRUE(maps.ok()) << maps.error().message;
    for (auto& map : *maps) ASSERT_TRUE(allocator.addMap(std::move(map)).ok());
  }
  auto allocation = allocator.allocate({{SlotName::of("cuda.device"), 2}, {SlotName::of("cpu"), 1}});
  ASSERT_TRUE(allocation.ok()) << allocation.error().message;
  std::map<std::string, std::map<std::string, Quantity>> gpus;
  for (const SlotGrants& s : *allocation) {
    if (s.slot.str() != "cuda.device") continue;
    for (const DeviceGrant& g : s.grants) gpus["cuda.device"][allocator.map("cuda.device")->deviceId(g.device)] = g.amount;
  }
  auto prepared = cuda->prepareSession("s1", gpus);
  ASSERT_TRUE(prepared.ok()) << prepared.error().message;
  EXPECT_EQ(std::count(prepared->env.at("BAI_MOCK_CUDA_DEVICES").begin(), prepared->env.at("BAI_MOCK_CUDA_DEVICES").end(), ','), 1);
  EXPECT_TRUE(cuda->releaseSession("s1", gpus).ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bai::core
