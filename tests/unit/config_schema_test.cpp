#include "config_schema.hpp"

#include <gtest/gtest.h>

namespace bai::config {
namespace {

const Schema& schema() {
  static const Schema s("test", {
      {"agent.id", KeyType::String, "", "the agent id"},
      {"agent.rpc-listen-addr", KeyType::String, "\"127.0.0.1:6001\"", "RPC address"},
      {"agent.heartbeat-interval", KeyType::Seconds, "5", "seconds between heartbeats"},
      {"agent.allow-plugins", KeyType::StringList, "[]", "plugin names to load"},
      {"resource.reserved-cpu", KeyType::Decimal, "1", "cores kept for the system"},
      {"resource.reserved-mem", KeyType::Size, "\"1g\"", "memory kept for the system"},
      {"runtime.max-sessions", KeyType::Integer, "64", "sessions at once"},
      {"runtime.debug", KeyType::Boolean, "false", "verbose logs"},
      {"plugins.*", KeyType::Table, "", "a plugin's own table"},
  });
  return s;
}

std::string errorOf(std::string_view toml) {
  auto parsed = schema().parse(toml, "agent.toml");
  return parsed.ok() ? "" : parsed.error().message;
}

TEST(ConfigSchema, DefaultsAndValues) {
  auto config = schema().parse(R"(
[agent]
id = "node-1"
heartbeat-interval = 0.25
allow-plugins = ["cpu", "mock"]
[resource]
reserved-mem = "512m"
reserved-cpu = "0.5"
[plugins.mock]
config_file = "mock.toml"
devices = { count = 2 }
[plugins.cpu]
)", "agent.toml");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->string("agent.id"), "node-1");
  EXPECT_EQ(config->string("agent.rpc-listen-addr"), "127.0.0.1:6001");
  EXPECT_DOUBLE_EQ(config->seconds("agent.heartbeat-interval"), 0.25);
  EXPECT_EQ(config->stringList("agent.allow-plugins"), (std::vector<std::string>{"cpu", "mock"}));
  EXPECT_EQ(config->size("resource.reserved-mem"), 512u << 20);
  EXPECT_EQ(config->decimal("resource.reserved-cpu"), Quantity::parse("0.5").value());
  EXPECT_EQ(config->integer("runtime.max-sessions"), 64);
  EXPECT_FALSE(config->boolean("runtime.debug"));
  auto plugins = config->tables("plugins");
  ASSERT_EQ(plugins.size(), 2u);
  EXPECT_EQ(plugins["mock"]["config_file"], "mock.toml");
  EXPECT_EQ(plugins["mock"]["devices"]["count"], 2);
  EXPECT_TRUE(plugins["cpu"].is_object());
  EXPECT_TRUE(config->isSet("agent.id"));
  EXPECT_FALSE(config->isSet("runtime.debug"));
}

TEST(ConfigSchema, ErrorsNameTheFileLineAndKey) {
  EXPECT_EQ(errorOf("[agent]\nid = 1\n"), "agent.toml:2: 'agent.id' must be a string, got 1");
  EXPECT_EQ(errorOf("[agent]\nrpc-listen-adr = \"x\"\n"),
            "agent.toml:2: unknown key 'agent.rpc-listen-adr' (did you mean 'agent.rpc-listen-addr'?); see --print-config-reference");
  EXPECT_EQ(errorOf("[nope]\nx = 1\n"), "agent.toml:2: unknown key 'nope.x'; see --print-config-reference");
  EXPECT_EQ(errorOf("[resource]\nreserved-mem = \"1.5\"\n"), "agent.toml:2: 'resource.reserved-mem': invalid size '1.5': not a whole number of bytes");
  EXPECT_EQ(errorOf("[agent]\nheartbeat-interval = -1\n"), "agent.toml:2: 'agent.heartbeat-interval' must be a non-negative number of seconds, got -1");
  EXPECT_EQ(errorOf("[agent]\nallow-plugins = [1]\n"), "agent.toml:2: 'agent.allow-plugins' must be a list of strings, got [1]");
  EXPECT_EQ(errorOf("[runtime]\ndebug = \"yes\"\n"), "agent.toml:2: 'runtime.debug' must be true or false, got \"yes\"");
  EXPECT_NE(errorOf("[agent\n").find("agent.toml:1:"), std::string::npos);
  EXPECT_EQ(errorOf("plugins = 3\n"), "agent.toml:1: unknown key 'plugins' (did you mean 'plugins.*'?); see --print-config-reference");
}

// Found by tests/fuzz (config_toml): 1e20 seconds overflowed the daemons' millisecond
// durations, undefined behaviour caught by UBSan.
TEST(ConfigSchema, SecondsStayWithinWhatADurationHolds) {
  EXPECT_EQ(errorOf("[agent]\nheartbeat-interval = 1e20\n"),
            "agent.toml:2: 'agent.heartbeat-interval' must be at most 1000000000 seconds, got 1e+20");
  EXPECT_EQ(errorOf("[agent]\nheartbeat-interval = \"1000000000.000001\"\n"),
            "agent.toml:2: 'agent.heartbeat-interval' must be at most 1000000000 seconds, got \"1000000000.000001\"");
  EXPECT_EQ(errorOf("[agent]\nheartbeat-interval = 1000000000\n"), "");
  Config config = schema().defaults();
  EXPECT_FALSE(config.override("agent.heartbeat-interval", "99999999999999999999").ok());
}

TEST(ConfigSchema, FlagsOverrideTheFile) {
  Config config = schema().defaults();
  ASSERT_TRUE(config.override("agent.rpc-listen-addr", "127.0.0.1:7000").ok());
  EXPECT_EQ(config.string("agent.rpc-listen-addr"), "127.0.0.1:7000");
  ASSERT_TRUE(config.override("runtime.max-sessions", "8").ok());
  EXPECT_EQ(config.integer("runtime.max-sessions"), 8);
  ASSERT_TRUE(config.override("agent.allow-plugins", "cpu,mock").ok());
  EXPECT_EQ(config.stringList("agent.allow-plugins"), (std::vector<std::string>{"cpu", "mock"}));
  EXPECT_FALSE(config.override("runtime.max-sessions", "eight").ok());
  EXPECT_FALSE(config.override("resource.reserved-mem", "-1g").ok());
  EXPECT_FALSE(config.override("agent.nope", "x").ok());
}

TEST(ConfigSchema, ReferenceListsEveryKey) {
  const std::string reference = schema().reference();
  EXPECT_NE(reference.find("| `agent.rpc-listen-addr` | string | `\"127.0.0.1:6001\"` | RPC address |"), std::string::npos)
      << reference;
  EXPECT_NE(reference.find("| `agent.id` | string | (none) | the agent id |"), std::string::npos);
}

TEST(ConfigSchema, BadDefaultsAreProgrammingErrors) {
  EXPECT_THROW(Schema("x", {{"a.b", KeyType::Integer, "\"text\"", ""}}), std::logic_error);
  EXPECT_THROW(schema().defaults().string("undeclared.key"), std::logic_error);
}

}  // namespace
}  // namespace bai::config
