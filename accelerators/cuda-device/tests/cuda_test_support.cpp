#include "cuda_test_support.hpp"

#include "json_schema.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace bai::cuda::testing {
namespace {

std::string fromEnv(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

}  // namespace

std::string pluginPath() { return fromEnv("BAI_CUDA_DEVICE_PLUGIN", "cuda-device.so"); }
std::string fakeLibrary() { return fromEnv("BAI_FAKE_NVML_LIBRARY", "libnvidia-ml.so.1"); }
std::string minimalFakeLibrary() { return fromEnv("BAI_FAKE_NVML_MINIMAL_LIBRARY", "libnvidia-ml-minimal.so.1"); }
std::string noCountFakeLibrary() { return fromEnv("BAI_FAKE_NVML_NO_COUNT_LIBRARY", "libnvidia-ml-no-count.so.1"); }

std::string scenarioPath(std::string_view name) {
  return (std::filesystem::path(fromEnv("BAI_FAKE_SCENARIO_DIR", "tests/fakes/scenarios")) /
          (std::string(name) + ".json"))
      .string();
}

Scenario::Scenario(std::string_view name) : path_(scenarioPath(name)) {
  std::ifstream file(path_);
  document_ = json::parse(file, nullptr, false);
  EXPECT_FALSE(document_.is_discarded()) << "cannot read " << path_;
  if (document_.is_discarded()) document_ = json::object();
  ::setenv("BAI_FAKE_NVML_CONFIG", path_.c_str(), 1);
  for (const json& gpu : document_.value("devices", json::array())) {
    if (!gpu.contains("numa_node")) continue;
    std::string bus = gpu.value("pci_bus_id", "");
    for (char& c : bus) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (bus.size() > 4 && bus.compare(0, 4, "0000") == 0 && bus.find(':') == 8) bus.erase(0, 4);
    std::filesystem::path dir = sysfs_.path() / "sys/bus/pci/devices" / bus;
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "numa_node") << gpu["numa_node"].get<int>() << "\n";
  }
}

json Scenario::config(const json& settings) const {
  json config = {{"nvml_library", fakeLibrary()}, {"sysfs_root", sysfsRoot()}};
  config.update(settings);
  return config;
}

std::string Scenario::gpuUuid(std::size_t index) const { return document_["devices"].at(index)["uuid"]; }

json parsePayload(std::string_view schema, const std::string& text) {
  json payload = json::parse(text, nullptr, false);
  EXPECT_FALSE(payload.is_discarded()) << "not JSON: " << text;
  if (payload.is_discarded()) return json::object();
  auto valid = bai::json::abiSchemas().validate(schema, payload);
  EXPECT_TRUE(valid.ok()) << schema << ": " << (valid.ok() ? "" : valid.error().message) << "\n" << text;
  return payload;
}

std::string session(std::string_view id, const json& allocation) {
  return json{{"session_id", id}, {"allocation", allocation}}.dump();
}

std::vector<std::string> logLines(const bai::testing::DirectPlugin& plugin, int level) {
  std::vector<std::string> lines;
  for (const std::string& line : plugin.logs()) {
    if (line.rfind(std::to_string(level) + ": ", 0) == 0) lines.push_back(line);
  }
  return lines;
}

}  // namespace bai::cuda::testing
