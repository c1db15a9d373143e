// Every bad config makes create fail with BAI_ERR_INVALID_ARGUMENT and exactly one log
// line that names the key and, for a file, the file and line where it was written.
#include "mock_test_support.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace bai::mock::testing {
namespace {

using bai::testing::DirectPlugin;

// The offending line of a case's TOML ends with this marker; the test finds its number.
constexpr std::string_view kMarker = "# <-";

const std::string kKey = "key = \"cuda\"\n";
const std::string kDevice = "[[devices]]\nuuid = \"U0\"\nmodel = \"M\"\nsm_count = 8\nmemory = \"8g\"\n";

std::string device(const std::string& extraLines, const std::string& uuid = "U0") {
  return "[[devices]]\nuuid = \"" + uuid + "\"\nmodel = \"M\"\nsm_count = 8\nmemory = \"8g\"\n" + extraLines;
}

// A file of one device whose `memory = <value>` line is the offending one.
std::string withMemory(const std::string& value) {
  return kKey + "[[devices]]\nuuid = \"U\"\nmodel = \"M\"\nsm_count = 1\nmemory = " + value + " # <-\n";
}

struct BadFile {
  std::string name;
  std::string toml;
  std::string expected;  // a fragment of the log line
};

std::ostream& operator<<(std::ostream& out, const BadFile& bad) { return out << bad.name; }

int markedLine(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (line.find(kMarker) != std::string::npos) return number;
  }
  return 0;
}

// Creates from `config`; expects INVALID_ARGUMENT and one error line; returns that line.
std::string rejectedWith(const std::string& config) {
  DirectPlugin plugin(pluginPath());
  EXPECT_TRUE(plugin.loaded());
  EXPECT_EQ(plugin.create(config), BAI_ERR_INVALID_ARGUMENT) << config;
  EXPECT_EQ(plugin.instance(), nullptr);
  std::vector<std::string> logs = plugin.logs();
  EXPECT_EQ(logs.size(), 1u) << ::testing::PrintToString(logs);
  EXPECT_EQ(errorLines(plugin).size(), 1u) << ::testing::PrintToString(logs);
  return logs.empty() ? "" : logs.back();
}

class MockBadFile : public ::testing::TestWithParam<BadFile> {};

TEST_P(MockBadFile, FailsNamingKeyFileAndLine) {
  const BadFile& bad = GetParam();
  TempDir dir;
  std::string path = dir.write(bad.name + ".toml", bad.toml);
  int line = markedLine(bad.toml);
  ASSERT_GT(line, 0) << "the case marks no line";
  std::string logged = rejectedWith(json{{"config_file", path}}.dump());
  EXPECT_NE(logged.find(path + ":" + std::to_string(line) + ":"), std::string::npos) << logged;
  EXPECT_NE(logged.find(bad.expected), std::string::npos) << logged;
}

const BadFile kBadFiles[] = {
    {"unknown_top_key", kKey + "colour = \"red\" # <-\n", "colour: unknown key"},
    {"unknown_device_key", kKey + device("colour = 1 # <-\n"), "devices[0].colour: unknown key"},
    {"unknown_slice_key", kKey + device("mig = true\nmig_slices = [{ profile = \"1g.5gb\", size = 1 }] # <-\n"),
     "devices[0].mig_slices[0].size: unknown key"},
    {"unknown_fault_key", kKey + "[faults]\nexplode = true # <-\n", "faults.explode: unknown key"},
    {"numa_node_string", kKey + device("numa_node = \"0\" # <-\n"),
     "devices[0].numa_node: expected a non-negative integer"},
    {"mode_number", kKey + "mode = 1 # <-\n", "mode: expected a string"},
    {"memory_float", withMemory("40.0"), "devices[0].memory: expected a size"},
    {"devices_not_tables", kKey + "devices = [1, 2] # <-\n", "devices: expected a list of tables"},
    {"mask_not_list", kKey + "device_mask = \"0\" # <-\n", "device_mask: expected a list of strings"},
    {"negative_sm_count", kKey + "[[devices]]\nuuid = \"U\"\nmodel = \"M\"\nsm_count = -4 # <-\nmemory = \"8g\"\n",
     "devices[0].sm_count: must not be negative"},
    {"negative_numa_node", kKey + device("numa_node = -1 # <-\n"), "devices[0].numa_node: must not be negative"},
    {"negative_unit_proc", kKey + "mode = \"fractional\"\nunit_proc = -8 # <-\n", "unit_proc: must not be negative"},
    {"negative_delay", kKey + "[faults.delay_ms]\nall = -5 # <-\n", "faults.delay_ms.all: must not be negative"},
    {"negative_seconds", kKey + kDevice + "[[faults.devices]]\ndevice = \"U0\"\ngone_after = \"-1\" # <-\n",
     "faults.devices[0].gone_after: \"-1\" is not a number"},
    {"duplicate_id", kKey + device("id = \"a\"\n") + device("id = \"a\" # <-\n", "U1"),
     "devices[1].id: \"a\" is already"},
    {"duplicate_uuid",
     kKey + kDevice + "[[devices]]\nuuid = \"U0\" # <-\nmodel = \"M\"\nsm_count = 8\nmemory = \"8g\"\n",
     "devices[1].uuid: \"U0\" is already"},
    {"id_is_other_uuid", kKey + kDevice + device("id = \"U0\" # <-\n", "U1"), "devices[1].id: \"U0\" is already"},
    {"key_upper_case", "key = \"CUDA\" # <-\n", "key: \"CUDA\" is not a device key"},
    {"key_with_dot", "key = \"cu.da\" # <-\n", "is not a device key"},
    {"key_leading_digit", "key = \"1gpu\" # <-\n", "is not a device key"},
    {"key_too_long", "key = \"abcdefghijklmnopqrstuvwxyzabcdef\" # <-\n", "at most 31 characters"},
    {"memory_unknown_unit", withMemory("\"40q\""), "devices[0].memory: \"40q\" is not a whole number of bytes"},
    {"memory_fractional_bytes", withMemory("\"1.5\""), "\"1.5\" is not a whole number of bytes"},
    {"memory_fraction_of_k", withMemory("\"0.1k\""), "\"0.1k\" is not a whole number"},
    {"memory_bare_ib", withMemory("\"40ib\""), "\"40ib\" is not"},
    {"memory_zero", withMemory("0"), "devices[0].memory: must be greater than 0"},
    {"sm_count_zero", kKey + "[[devices]]\nuuid = \"U\"\nmodel = \"M\"\nsm_count = 0 # <-\nmemory = 1\n",
     "devices[0].sm_count: must be at least 1"},
    {"missing_uuid", kKey + "[[devices]] # <-\nmodel = \"M\"\nsm_count = 1\nmemory = 1\n", "devices[0].uuid: missing"},
    {"missing_model", kKey + "[[devices]] # <-\nuuid = \"U\"\nsm_count = 1\nmemory = 1\n", "devices[0].model: missing"},
    {"missing_memory", kKey + "[[devices]] # <-\nuuid = \"U\"\nmodel = \"M\"\nsm_count = 1\n",
     "devices[0].memory: missing"},
    {"missing_sm_count", kKey + "[[devices]] # <-\nuuid = \"U\"\nmodel = \"M\"\nmemory = 1\n",
     "devices[0].sm_count: missing"},
    {"missing_fault_device", kKey + "[[faults.devices]] # <-\ngone_after = 1\n", "faults.devices[0].device: missing"},
    {"bad_mode", kKey + "mode = \"shared\" # <-\n", "mode: expected \"discrete\" or \"fractional\""},
    {"bad_strategy", kKey + "strategy = \"random\" # <-\n", "strategy: expected \"evenly\" or \"fill\""},
    {"mask_unknown_device", kKey + "device_mask = [\"7\"] # <-\n" + kDevice,
     "device_mask: \"7\" is not the id or uuid of a device"},
    {"mig_without_slices",
     kKey + "[[devices]] # <-\nuuid = \"U\"\nmodel = \"M\"\nsm_count = 1\nmemory = 1\nmig = true\n",
     "devices[0].mig_slices: missing: a GPU with mig = true needs its slices"},
    {"slices_without_mig", kKey + device("mig_slices = [{ profile = \"1g.5gb\" }] # <-\n"),
     "devices[0].mig_slices: given but mig is not true"},
    {"bad_mig_profile", kKey + device("mig = true\nmig_slices = [{ profile = \"1G.10GB\" }] # <-\n"),
     "devices[0].mig_slices[0].profile: expected lower-case"},
    {"less_than_a_quantum",
     kKey + "mode = \"fractional\"\nunit_mem = \"16g\"\nquantum_size = \"1\"\n[[devices]] # <-\nuuid = \"U\"\nmodel = "
            "\"M\"\nsm_count = 8\nmemory = \"8g\"\n",
     "devices[0]: holds 0.5 shares"},
    {"unit_mem_in_discrete_mode", kKey + "unit_mem = \"2g\" # <-\n", "unit_mem: applies only to mode = \"fractional\""},
    {"quantum_zero", kKey + "mode = \"fractional\"\nquantum_size = \"0\" # <-\n",
     "quantum_size: must be greater than 0"},
    {"quantum_too_precise", kKey + "mode = \"fractional\"\nquantum_size = \"0.0000001\" # <-\n",
     "quantum_size: \"0.0000001\" is not a decimal"},
    {"quantum_text", kKey + "mode = \"fractional\"\nquantum_size = \"abc\" # <-\n",
     "quantum_size: \"abc\" is not a decimal"},
    {"unit_mem_zero", kKey + "mode = \"fractional\"\nunit_mem = \"0g\" # <-\n", "unit_mem: must be greater than 0"},
    {"fault_unknown_device", kKey + kDevice + "[[faults.devices]]\ndevice = \"9\" # <-\ngone_after = 1\n",
     "faults.devices[0].device: \"9\" is not the id or uuid of a visible device"},
    {"fault_masked_device",
     kKey + "device_mask = [\"0\"]\n" + kDevice + "[[faults.devices]]\ndevice = \"U0\" # <-\ngone_after = 1\n",
     "is not the id or uuid of a visible device"},
    {"recover_before_unhealthy",
     kKey + kDevice + "[[faults.devices]]\ndevice = \"0\"\nunhealthy_after = \"0.5\"\nrecover_after = \"0.2\" # <-\n",
     "faults.devices[0].recover_after: needs an earlier unhealthy_after"},
    {"recover_alone", kKey + kDevice + "[[faults.devices]]\ndevice = \"0\"\nrecover_after = \"0.2\" # <-\n",
     "recover_after: needs an earlier unhealthy_after"},
    {"fault_without_timing", kKey + kDevice + "[[faults.devices]] # <-\ndevice = \"0\"\n",
     "faults.devices[0]: needs unhealthy_after or gone_after"},
    {"fault_twice",
     kKey + kDevice +
         "[[faults.devices]]\ndevice = \"0\"\ngone_after = 1\n[[faults.devices]]\ndevice = \"U0\" # <-\ngone_after = "
         "2\n",
     "faults.devices[1].device: \"U0\" has faults already"},
    {"fail_destroy", kKey + "[faults]\nfail = [\"destroy\"] # <-\n",
     "faults.fail: \"destroy\" is not a call that can fail"},
    {"fail_unknown_call", kKey + "[faults]\nfail = [\"lst_devices\"] # <-\n", "\"lst_devices\" is not a call"},
    {"delay_unknown_call", kKey + "[faults.delay_ms]\nlst_devices = 5 # <-\n",
     "faults.delay_ms.lst_devices: unknown key"},
    {"delay_text", kKey + "[faults.delay_ms]\nall = \"fast\" # <-\n", "faults.delay_ms.all: \"fast\" is not a number"},
    {"count_zero", kKey + device("count = 0 # <-\n"), "devices[0].count: must be at least 1"},
    {"count_without_index",
     kKey + "[[devices]]\nuuid = \"U\" # <-\nmodel = \"M\"\nsm_count = 1\nmemory = 1\ncount = 2\n",
     "devices[0].uuid: needs {i}"},
    {"count_too_large",
     kKey + "[[devices]]\nuuid = \"U{i}\"\nmodel = \"M\"\nsm_count = 1\nmemory = 1\ncount = 70000 # <-\n",
     "devices[0].count: more than 65536 devices"},
    {"attribute_not_string", kKey + "[attributes]\ndriver = 535 # <-\n", "attributes.driver: expected a string"},
    {"utilization_over_100", kKey + device("utilization = \"100.5\" # <-\n"),
     "devices[0].utilization: is a percentage"},
    {"memory_used_over_memory", kKey + device("memory_used = \"9g\" # <-\n"),
     "devices[0].memory_used: is more than memory"},
    {"id_with_comma", kKey + device("id = \"a,b\" # <-\n"), "devices[0].id: \"a,b\": 1 to 128 characters"},
    {"empty_uuid", kKey + "[[devices]]\nuuid = \"\" # <-\nmodel = \"M\"\nsm_count = 1\nmemory = 1\n",
     "devices[0].uuid: \"\": 1 to 128"},
    {"syntax_error", kKey + "mode = \"discrete # <-\n", "TOML syntax"},
    {"device_node_relative", kKey + device("device_node = \"mock0\" # <-\n"),
     "devices[0].device_node: \"mock0\" is not an absolute path"},
    {"session_extra_unknown_key", kKey + "[session_extra]\nenv = { A = \"1\" } # <-\n", "session_extra.env: unknown key"},
    {"session_extra_mount_without_target", kKey + "[[session_extra.mounts]] # <-\nsource = \"/x\"\n",
     "session_extra.mounts[0].target: missing"},
    {"session_extra_devices_not_a_list", kKey + "[session_extra]\ndevices = \"/dev/x\" # <-\n",
     "session_extra.devices: expected a list"},
    {"session_extra_date", kKey + "[session_extra.limits]\nwhen = 1979-05-27 # <-\n",
     "session_extra.limits.when: dates and times are not payload values"},
};

INSTANTIATE_TEST_SUITE_P(Cases, MockBadFile, ::testing::ValuesIn(kBadFiles),
                         [](const auto& info) { return info.param.name; });

TEST(MockBadConfig, MissingKeyIsNamed) {
  TempDir dir;
  std::string path = dir.write("no_key.toml", "mode = \"discrete\"\n");
  std::string logged = rejectedWith(json{{"config_file", path}}.dump());
  EXPECT_NE(logged.find(path), std::string::npos) << logged;
  EXPECT_NE(logged.find("key: missing (required)"), std::string::npos) << logged;
}

TEST(MockBadConfig, UnreadableFileIsNamed) {
  std::string logged = rejectedWith(R"({"config_file": "/nonexistent/bai-mock.toml"})");
  EXPECT_NE(logged.find("/nonexistent/bai-mock.toml"), std::string::npos) << logged;
}

struct BadInline {
  std::string name;
  std::string config;
  std::string expected;
};

std::ostream& operator<<(std::ostream& out, const BadInline& bad) { return out << bad.name; }

class MockBadInline : public ::testing::TestWithParam<BadInline> {};

TEST_P(MockBadInline, FailsNamingTheKey) {
  std::string logged = rejectedWith(GetParam().config);
  EXPECT_NE(logged.find(GetParam().expected), std::string::npos) << logged;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MockBadInline,
    ::testing::Values(
        BadInline{"not_json", "nope", "must be a JSON object"}, BadInline{"not_object", "[1]", "must be a JSON object"},
        BadInline{"config_file_number", R"({"config_file": 7})", "config_file: expected a file path"},
        BadInline{"null_value", R"({"key": "cuda", "device_mask": null})", "inline config: device_mask: null"},
        BadInline{"float_memory",
                  R"({"key": "cuda", "devices": [{"uuid": "U", "model": "M", "sm_count": 1, "memory": 40.5}]})",
                  "inline config: devices[0].memory: expected a size"},
        BadInline{"unknown_key", R"({"key": "cuda", "colour": "red"})", "inline config: colour: unknown key"},
        BadInline{"huge_number", R"({"key": "cuda", "unit_proc": 18446744073709551615})",
                  "unit_proc: number too large"},
        BadInline{"negative_inline",
                  R"({"key": "cuda", "devices": [{"uuid": "U", "model": "M", "sm_count": -1, "memory": 1}]})",
                  "inline config: devices[0].sm_count: must not be negative"}),
    [](const auto& info) { return info.param.name; });

TEST(MockBadConfig, InlineOverrideOfAFileIsCheckedToo) {
  std::string logged = rejectedWith(sampleConfig("mock-4xa100.toml", {{"mode", 7}}));
  EXPECT_NE(logged.find("inline config: mode: expected a string"), std::string::npos) << logged;
}

}  // namespace
}  // namespace bai::mock::testing
