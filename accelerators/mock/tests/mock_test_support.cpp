#include "mock_test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

namespace bai::mock::testing {

std::string pluginPath() {
  const char* path = std::getenv("BAI_MOCK_PLUGIN");
  return path != nullptr ? path : "mock.so";
}

std::string samplePath(std::string_view name) {
  const char* dir = std::getenv("BAI_MOCK_CONFIG_DIR");
  return (std::filesystem::path(dir != nullptr ? dir : "configs/accelerator") / name).string();
}

std::string sampleConfig(std::string_view name, const json& inlineSettings) {
  json config = inlineSettings;
  config["config_file"] = samplePath(name);
  return config.dump();
}

TempDir::TempDir() {
  std::filesystem::path base = std::filesystem::temp_directory_path();
  std::random_device seed;
  path_ = (base / ("bai-mock-test-" + std::to_string(seed()))).string();
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::write(std::string_view name, std::string_view text) const {
  std::string path = (std::filesystem::path(path_) / name).string();
  std::ofstream(path) << text;
  return path;
}

std::vector<std::string> errorLines(const bai::testing::DirectPlugin& plugin) {
  std::vector<std::string> lines;
  for (const std::string& line : plugin.logs()) {
    if (line.rfind(std::to_string(BAI_LOG_ERROR) + ": ", 0) == 0) lines.push_back(line);
  }
  return lines;
}

std::string session(std::string_view id, const json& allocation) {
  return json{{"session_id", id}, {"allocation", allocation}}.dump();
}

}  // namespace bai::mock::testing
