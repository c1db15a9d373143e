// prepare_session / release_session / session_measures of the mock plugin: the env each
// session gets, input validation, prepare/release pairing and over-allocation checks.
#include "mock_test_support.hpp"

#include <gtest/gtest.h>

namespace bai::mock::testing {
namespace {

using bai::testing::DirectPlugin;

constexpr const char* kUuid0 = "GPU-a1000000-0000-4000-8000-000000000000";
constexpr const char* kUuid2 = "GPU-a1000000-0000-4000-8000-000000000002";

class MockSession : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(plugin_.loaded());
    ASSERT_EQ(plugin_.create(sampleConfig("mock-4xa100.toml")), BAI_OK) << plugin_.lastLog();
  }

  // prepare_session's status, and its payload (checked against the schema) when it worked.
  bai_status prepare(const std::string& document, json* payload = nullptr) {
    char* out = nullptr;
    bai_status status = plugin_.vtable().prepare_session(plugin_.instance(), document.c_str(), &out);
    if (status == BAI_OK && payload != nullptr) *payload = parsePayload("prepare_session", out);
    plugin_.vtable().free_string(out);
    return status;
  }

  DirectPlugin plugin_{pluginPath()};
};

TEST_F(MockSession, DevicesAreListedByUuidInDeviceOrder) {
  json result;
  ASSERT_EQ(prepare(session("s1", {{"cuda.device", {{"2", "1"}, {"0", "1"}}}}), &result), BAI_OK) << plugin_.lastLog();
  EXPECT_EQ(result.at("env"),
            json({{"BAI_MOCK_CUDA_DEVICES", std::string(kUuid0) + "," + kUuid2}, {"BAI_MOCK_CUDA_DEVICE_COUNT", "2"}}));
  EXPECT_EQ(result.at("devices"), json::array());
  EXPECT_EQ(result.at("mounts"), json::array());
  EXPECT_EQ(result.at("limits"), json::object());
  EXPECT_EQ(plugin_.releaseSession(session("s1", {{"cuda.device", {{"2", "1"}, {"0", "1"}}}})), BAI_OK);
}

TEST_F(MockSession, ASessionWithoutDevicesSeesNone) {
  json result;
  ASSERT_EQ(prepare(session("cpu-only", json::object()), &result), BAI_OK);
  EXPECT_EQ(result.at("env"), json({{"BAI_MOCK_CUDA_DEVICES", ""}, {"BAI_MOCK_CUDA_DEVICE_COUNT", "0"}}));
  ASSERT_EQ(prepare(session("zero", {{"cuda.device", {{"1", "0"}}}}), &result), BAI_OK);
  EXPECT_EQ(result.at("env").at("BAI_MOCK_CUDA_DEVICES"), "");
}

TEST_F(MockSession, ReleaseIsPairedWithPrepare) {
  EXPECT_EQ(plugin_.releaseSession(session("never", json::object())), BAI_ERR_NOT_FOUND);
  ASSERT_EQ(prepare(session("once", {{"cuda.device", {{"1", "1"}}}})), BAI_OK);
  EXPECT_EQ(prepare(session("once", {{"cuda.device", {{"2", "1"}}}})), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(plugin_.releaseSession(session("once", {{"cuda.device", {{"1", "1"}}}})), BAI_OK);
  EXPECT_EQ(plugin_.releaseSession(session("once", {{"cuda.device", {{"1", "1"}}}})), BAI_ERR_NOT_FOUND);
  EXPECT_NE(plugin_.lastLog().find("once"), std::string::npos) << plugin_.lastLog();
  ASSERT_EQ(prepare(session("once", {{"cuda.device", {{"1", "1"}}}})), BAI_OK) << "an id is reusable after release";
}

TEST_F(MockSession, ADeviceIsNotGivenTwice) {
  ASSERT_EQ(prepare(session("a", {{"cuda.device", {{"3", "1"}}}})), BAI_OK);
  EXPECT_EQ(prepare(session("b", {{"cuda.device", {{"3", "1"}}}})), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_NE(plugin_.lastLog().find("device 3"), std::string::npos) << plugin_.lastLog();
  EXPECT_EQ(plugin_.releaseSession(session("a", json::object())), BAI_OK);
  EXPECT_EQ(prepare(session("b", {{"cuda.device", {{"3", "1"}}}})), BAI_OK);
}

TEST_F(MockSession, BadInputIsRejected) {
  const std::vector<std::string> bad = {
      "not json",
      "[]",
      R"({"allocation": {}})",
      R"({"session_id": "", "allocation": {}})",
      R"({"session_id": 7, "allocation": {}})",
      R"({"session_id": "x"})",
      R"({"session_id": "x", "allocation": []})",
      session("x", {{"rocm.device", {{"0", "1"}}}}),
      session("x", {{"cuda.shares", {{"0", "0.5"}}}}),
      session("x", {{"cuda.device", {{"9", "1"}}}}),
      session("x", {{"cuda.device", {{"0", "2"}}}}),
      session("x", {{"cuda.device", {{"0", "0.5"}}}}),
      session("x", {{"cuda.device", {{"0", "-1"}}}}),
      session("x", {{"cuda.device", {{"0", "one"}}}}),
      session("x", {{"cuda.device", {{"0", 0.5}}}}),
      session("x", {{"cuda.device", {{"0", 1.0}}}}),
      session("x", {{"cuda.device", "0"}}),
  };
  for (const std::string& document : bad) {
    std::size_t logged = plugin_.logs().size();
    EXPECT_EQ(prepare(document), BAI_ERR_INVALID_ARGUMENT) << document;
    EXPECT_EQ(plugin_.logs().size(), logged + 1) << document;
  }
  EXPECT_EQ(plugin_.releaseSession("not json"), BAI_ERR_INVALID_ARGUMENT);
  json result;
  ASSERT_EQ(prepare(session("x", {{"cuda.device", {{"0", 1}}}}), &result), BAI_OK) << "an integer amount is exact";
  EXPECT_EQ(result.at("env").at("BAI_MOCK_CUDA_DEVICES"), kUuid0);
}

TEST_F(MockSession, SessionMeasuresCoverTheSessionsDevices) {
  ASSERT_EQ(prepare(session("m", {{"cuda.device", {{"0", "1"}, {"1", "1"}}}})), BAI_OK);
  char* out = nullptr;
  ASSERT_EQ(plugin_.vtable().session_measures(plugin_.instance(), session("m", json::object()).c_str(), &out), BAI_OK);
  json measures = parsePayload("node_measures", out).at("measures");
  plugin_.vtable().free_string(out);
  EXPECT_EQ(measures, json::parse(R"([
      {"key": "cuda_util", "unit": "percent", "value": "35.5", "per_device": {"0": "35.5", "1": "0"}},
      {"key": "cuda_mem", "unit": "bytes", "value": "12884901888", "per_device": {"0": "12884901888", "1": "0"}}])"));
  out = nullptr;
  EXPECT_EQ(plugin_.vtable().session_measures(plugin_.instance(), session("other", json::object()).c_str(), &out),
            BAI_ERR_NOT_FOUND);
  EXPECT_EQ(out, nullptr);
}

TEST(MockSessionMig, ASliceIsGivenByItsId) {
  DirectPlugin plugin(pluginPath());
  ASSERT_EQ(plugin.create(sampleConfig("mock-2gpu-mig.toml")), BAI_OK) << plugin.lastLog();
  const std::string slice = "MIG-GPU-b2000000-0000-4000-8000-000000000001/2/0";
  json result = parsePayload("prepare_session",
                             plugin.prepareSession(session("mig", {{"cuda.device:1g.10gb-mig", {{slice, "1"}}}})));
  EXPECT_EQ(result.at("env").at("BAI_MOCK_CUDA_DEVICES"), slice);
  char* out = nullptr;
  const std::string two = session(
      "two", {{"cuda.device:1g.10gb-mig", {{"MIG-GPU-b2000000-0000-4000-8000-000000000001/3/0", "1"}, {slice, "1"}}}});
  EXPECT_EQ(plugin.vtable().prepare_session(plugin.instance(), two.c_str(), &out), BAI_ERR_INVALID_ARGUMENT);
  const std::string wrongSlot = session("w", {{"cuda.device", {{slice, "1"}}}});
  EXPECT_EQ(plugin.vtable().prepare_session(plugin.instance(), wrongSlot.c_str(), &out), BAI_ERR_INVALID_ARGUMENT);
  const std::string migGpu = session("g", {{"cuda.device", {{"1", "1"}}}});
  EXPECT_EQ(plugin.vtable().prepare_session(plugin.instance(), migGpu.c_str(), &out), BAI_ERR_INVALID_ARGUMENT)
      << "a GPU in MIG mode is not offered whole";
  EXPECT_EQ(plugin.releaseSession(session("mig", json::object())), BAI_OK);
}

TEST(MockSessionFractional, LimitsFollowTheShares) {
  DirectPlugin plugin(pluginPath());
  ASSERT_EQ(plugin.create(sampleConfig("mock-fractional.toml")), BAI_OK) << plugin.lastLog();
  json result = parsePayload(
      "prepare_session",
      plugin.prepareSession(session("f", {{"cuda.shares", {{"0", "0.5"}, {"1", "0.01"}, {"2", "3.333333"}}}})));
  const std::string u0 = "GPU-f3000000-0000-4000-8000-000000000000";
  const std::string u1 = "GPU-f3000000-0000-4000-8000-000000000001";
  const std::string u2 = "GPU-f3000000-0000-4000-8000-000000000002";
  EXPECT_EQ(result.at("env"),
            json({{"BAI_MOCK_CUDA_DEVICES", u0 + "," + u1 + "," + u2},
                  {"BAI_MOCK_CUDA_DEVICE_COUNT", "3"},
                  {"BAI_MOCK_CUDA_MEM_LIMITS", u0 + ":2147483648," + u1 + ":42949672," + u2 + ":14316556221"},
                  {"BAI_MOCK_CUDA_PROC_LIMITS", u0 + ":6," + u1 + ":1," + u2 + ":39"}}));
  // The share's figures are the env's and session_measures'; limits holds only keys the agent applies.
  EXPECT_EQ(result.at("limits"), json::object());

  char* out = nullptr;
  const std::string tooMuch = session("g", {{"cuda.shares", {{"2", "0.000001"}}}});
  EXPECT_EQ(plugin.vtable().prepare_session(plugin.instance(), tooMuch.c_str(), &out), BAI_ERR_INVALID_ARGUMENT)
      << "device 2 is full";
  const std::string overCapacity = session("h", {{"cuda.shares", {{"1", "6.01"}}}});
  EXPECT_EQ(plugin.vtable().prepare_session(plugin.instance(), overCapacity.c_str(), &out), BAI_ERR_INVALID_ARGUMENT);
  const std::string tooPrecise = session("i", {{"cuda.shares", {{"1", "0.0000001"}}}});
  EXPECT_EQ(plugin.vtable().prepare_session(plugin.instance(), tooPrecise.c_str(), &out), BAI_ERR_INVALID_ARGUMENT);
  json empty = parsePayload("prepare_session", plugin.prepareSession(session("none", json::object())));
  EXPECT_EQ(empty.at("env").at("BAI_MOCK_CUDA_MEM_LIMITS"), "");
  EXPECT_EQ(empty.at("env").at("BAI_MOCK_CUDA_PROC_LIMITS"), "");
  EXPECT_EQ(plugin.releaseSession(session("f", json::object())), BAI_OK);
  json again =
      parsePayload("prepare_session", plugin.prepareSession(session("g", {{"cuda.shares", {{"2", "0.000001"}}}})));
  EXPECT_EQ(again.at("env").at("BAI_MOCK_CUDA_PROC_LIMITS"), u2 + ":1");
}

// Two GPUs with nodes ({i} substituted), one without, one in MIG mode whose slices share its node.
constexpr const char* kNodesConfig = R"(key = "cuda"
[[devices]]
uuid = "N{i}"
model = "M"
sm_count = 8
memory = "8g"
count = 2
device_node = "/dev/mock{i}"
[[devices]]
uuid = "N2"
model = "M"
sm_count = 8
memory = "8g"
[[devices]]
uuid = "N3"
model = "M"
sm_count = 8
memory = "8g"
device_node = "/dev/mock-mig"
mig = true
mig_slices = [{ profile = "1g.4gb", count = 2 }]
)";

TEST(MockSessionDevices, GrantedDevicesWithANodeListItByPath) {
  TempDir dir;
  DirectPlugin plugin(pluginPath());
  ASSERT_EQ(plugin.create(json{{"config_file", dir.write("nodes.toml", kNodesConfig)}}.dump()), BAI_OK) << plugin.lastLog();
  json one = parsePayload("prepare_session", plugin.prepareSession(session("one", {{"cuda.device", {{"1", "1"}, {"2", "1"}}}})));
  EXPECT_EQ(one.at("devices"), json::parse(R"([{"path": "/dev/mock1"}])")) << "device 2 has no node";
  json none = parsePayload("prepare_session", plugin.prepareSession(session("none", json::object())));
  EXPECT_EQ(none.at("devices"), json::array());
  json both = parsePayload("prepare_session", plugin.prepareSession(session("both", {{"cuda.device", {{"0", "1"}}}})));
  EXPECT_EQ(both.at("devices"), json::parse(R"([{"path": "/dev/mock0"}])"));
  json slice = parsePayload("prepare_session",
                            plugin.prepareSession(session("mig", {{"cuda.device:1g.4gb-mig", {{"MIG-N3/1/0", "1"}}}})));
  EXPECT_EQ(slice.at("devices"), json::parse(R"([{"path": "/dev/mock-mig"}])"));
}

// session_extra is for tests of the host: it reaches every answer as written, even where
// it breaks the schema, which is then the host's to refuse naming the key.
TEST(MockSessionDevices, SessionExtraIsAddedToEveryAnswer) {
  TempDir dir;
  const std::string config = std::string(kNodesConfig) + R"(
[session_extra]
limits = { gpu_mem = "1g" }
devices = ["/dev/missing", { path = "/dev/null", type = "c", major = 1, minor = 3 }]
[[session_extra.mounts]]
source = "/nonexistent"
target = "/data"
read_only = true
)";
  DirectPlugin plugin(pluginPath());
  ASSERT_EQ(plugin.create(json{{"config_file", dir.write("extra.toml", config)}}.dump()), BAI_OK) << plugin.lastLog();
  for (const json& allocation : {json::object(), json{{"cuda.device", {{"0", "1"}}}}}) {
    const std::string id = allocation.empty() ? "none" : "gpu";
    json answer = json::parse(plugin.prepareSession(session(id, allocation)));
    EXPECT_EQ(answer.at("limits"), json::parse(R"({"gpu_mem": "1g"})"));
    EXPECT_EQ(answer.at("mounts"), json::parse(R"([{"source": "/nonexistent", "target": "/data", "read_only": true}])"));
    json devices = allocation.empty() ? json::array() : json::parse(R"([{"path": "/dev/mock0"}])");
    devices.push_back("/dev/missing");
    devices.push_back(json::parse(R"({"path": "/dev/null", "type": "c", "major": 1, "minor": 3})"));
    EXPECT_EQ(answer.at("devices"), devices) << id;
    auto valid = bai::json::abiSchemas().validate("prepare_session", answer);
    ASSERT_FALSE(valid.ok());
    EXPECT_NE(valid.error().message.find("gpu_mem"), std::string::npos) << valid.error().message;
  }
}

}  // namespace
}  // namespace bai::mock::testing
