// The container runtime over the real Docker API client and a scripted engine on a unix
// socket: what the engine is asked to create (CDI devices as each engine takes them), API
// errors, an engine that restarts and loses its containers, and one that is down at start.
#include "agent/container_runtime.hpp"

#include "fake_engine.hpp"
#include "runtime/docker_engine.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

#include <gtest/gtest.h>

namespace bai::core {
namespace {

using bai::testing::Behaviour;
using bai::testing::FakeEngine;

class AgentEngineTest : public ::testing::Test {
 protected:
  struct Exit {
    std::string id;
    ExitStatus status;
  };

  std::unique_ptr<ContainerRuntime> makeRuntime() {
    ContainerSettings settings;
    settings.engineSocket = socket();
    settings.checkInterval = std::chrono::milliseconds(100);
    ContainerRuntimeOptions options{"agent-1", settings, [](LogLevel, const std::string&, const std::string&) {},
                                    [this](const std::string& id, const ExitStatus& status) {
                                      std::lock_guard<std::mutex> lock(mutex_);
                                      exits_.push_back({id, status});
                                    },
                                    [] {}};
    EngineOptions engine;
    engine.callTimeout = std::chrono::seconds(5);
    return std::make_unique<ContainerRuntime>(std::move(options), makeDockerEngine(socket(), engine));
  }

  LaunchSpec launch(const std::string& id) {
    LaunchSpec spec;
    spec.sessionId = id;
    spec.sessionDir = dir_.path() / id;
    std::filesystem::create_directories(spec.sessionDir / "work");
    spec.command = {"sh", "-c", "true"};
    spec.owner = {200001, 200001, "tenant-a"};
    spec.isolation.sandbox.workDir = spec.sessionDir / "work";
    spec.image = "bai-test/busybox:1";
    return spec;
  }

  std::vector<Exit> exits() {
    std::lock_guard<std::mutex> lock(mutex_);
    return exits_;
  }
  std::filesystem::path socket() const { return dir_.path() / "engine.sock"; }

  bai::test::TempDir dir_;
  std::mutex mutex_;
  std::vector<Exit> exits_;
};

TEST_F(AgentEngineTest, CdiDevicesReachDockerAsDeviceRequestsAndPodmanAsDevices) {
  for (auto flavor : {EngineFlavor::Docker, EngineFlavor::Podman}) {
    SCOPED_TRACE(engineFlavorName(flavor));
    std::filesystem::remove(socket());
    FakeEngine engine(socket(), flavor, flavor == EngineFlavor::Docker ? "1.44" : "1.41");
    engine.addImage("bai-test/busybox:1", "sha256:1");
    auto runtime = makeRuntime();
    auto spec = launch(std::string("gpu-") + engineFlavorName(flavor));
    spec.isolation.cdiDevices = {"nvidia.com/gpu=GPU-0000"};
    auto started = runtime->start(spec);
    ASSERT_TRUE(started.ok()) << started.error().message;
    const auto bodies = engine.createdBodies();
    ASSERT_EQ(bodies.size(), 1u);
    const auto& host = bodies[0]["HostConfig"];
    if (flavor == EngineFlavor::Docker) {
      ASSERT_TRUE(host.contains("DeviceRequests")) << host.dump();
      EXPECT_EQ(host["DeviceRequests"][0]["Driver"], "cdi");
      EXPECT_EQ(host["DeviceRequests"][0]["DeviceIDs"][0], "nvidia.com/gpu=GPU-0000");
    } else {
      EXPECT_NE(host["Devices"].dump().find("nvidia.com/gpu=GPU-0000"), std::string::npos) << host.dump();
    }
    EXPECT_EQ(bodies[0]["User"], "200001:200001");
    EXPECT_EQ(host["CapDrop"], nlohmann::json::array({"ALL"}));
  }
}

TEST_F(AgentEngineTest, EngineErrorsAtCreateSayWhoseFailureItIs) {
  FakeEngine engine(socket());
  engine.addImage("bai-test/busybox:1", "sha256:1");
  auto runtime = makeRuntime();
  engine.failNext("POST", "/containers/create", 400, "invalid reference format");
  auto bad = runtime->start(launch("s1"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::InvalidArgument) << "the engine refused the session's container";
  EXPECT_NE(bad.error().message.find("invalid reference format"), std::string::npos) << bad.error().message;
  engine.failNext("POST", "/containers/create", 500, "storage is full");
  auto broken = runtime->start(launch("s2"));
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().code, ErrorCode::Internal) << "the engine's own failure: another agent may take it";
}

TEST_F(AgentEngineTest, AnEngineThatRestartsWithoutItsContainersEndsTheirSessionsWithTheReason) {
  FakeEngine engine(socket());
  engine.addImage("bai-test/busybox:1", "sha256:1");
  engine.onStart([](const nlohmann::json&) { return Behaviour::runsUntilKilled(); });
  auto runtime = makeRuntime();
  ASSERT_TRUE(runtime->start(launch("s1")).ok());
  engine.stop();
  EXPECT_TRUE(bai::testing::eventually([&] { return !runtime->report().available; })) << "its check sees it down";
  EXPECT_TRUE(exits().empty()) << "an engine that is down is not a session's end";
  engine.loseContainers();
  engine.start();
  ASSERT_TRUE(bai::testing::eventually([&] { return exits().size() == 1; }, std::chrono::seconds(15)));
  EXPECT_FALSE(exits()[0].status.recorded);
  EXPECT_NE(exits()[0].status.error.find("is gone from the engine"), std::string::npos) << exits()[0].status.error;
  EXPECT_TRUE(bai::testing::eventually([&] { return runtime->report().available; }));
}

TEST_F(AgentEngineTest, AnEngineThatIsDownAtStartIsAReasonAndTheRuntimeComesUpWithIt) {
  auto runtime = makeRuntime();  // nothing listens yet
  EXPECT_FALSE(runtime->report().available);
  EXPECT_NE(runtime->report().reason.find(socket().string()), std::string::npos) << runtime->report().reason;
  FakeEngine engine(socket());
  engine.addImage("bai-test/busybox:1", "sha256:1");
  ASSERT_TRUE(bai::testing::eventually([&] { return runtime->report().available; }));
  auto images = runtime->images();
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0].name, "bai-test/busybox:1");
}

}  // namespace
}  // namespace bai::core
