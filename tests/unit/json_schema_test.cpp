#include "json_schema.hpp"

#include <gtest/gtest.h>

namespace bai::json {
namespace {

using nlohmann::json;

class Validator : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(set.add(R"({"$id": "defs", "$defs": {"name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8}}})").ok());
    ASSERT_TRUE(set.add(R"({
      "$id": "thing", "type": "object", "required": ["name", "count"],
      "properties": {
        "name": {"$ref": "defs#/$defs/name"},
        "count": {"type": "integer", "minimum": 0, "maximum": 10},
        "kind": {"enum": ["a", "b"]},
        "tags": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string", "minLength": 1}},
        "extra": {"type": "object", "additionalProperties": {"type": ["string", "null"]}}
      },
      "additionalProperties": false})").ok());
  }
  std::string errorFor(const char* text) {
    auto result = set.validate("thing", json::parse(text));
    return result.ok() ? "" : result.error().message;
  }
  SchemaSet set;
};

TEST_F(Validator, AcceptsAValidDocument) {
  EXPECT_EQ(errorFor(R"({"name": "abc", "count": 3, "kind": "a", "tags": ["x"], "extra": {"k": "v", "n": null}})"), "");
}

TEST_F(Validator, NamesThePathAndWhatWasExpected) {
  EXPECT_EQ(errorFor(R"({"name": "abc"})"), "at /: missing required member \"count\"");
  EXPECT_EQ(errorFor(R"({"name": "abc", "count": "3"})"), "at /count: expected integer, got string");
  EXPECT_EQ(errorFor(R"({"name": "abc", "count": 11})"), "at /count: expected at most 10, got 11");
  EXPECT_EQ(errorFor(R"({"name": "abc", "count": -1})"), "at /count: expected at least 0, got -1");
  EXPECT_EQ(errorFor(R"({"name": "ABC", "count": 1})"), "at /name: expected text matching \"^[a-z]+$\", got \"ABC\"");
  EXPECT_EQ(errorFor(R"({"name": "abcdefghij", "count": 1})"), "at /name: expected at most 8 characters, got \"abcdefghij\"");
  EXPECT_EQ(errorFor(R"({"name": "abc", "count": 1, "kind": "c"})"), "at /kind: expected one of [\"a\",\"b\"], got \"c\"");
  EXPECT_EQ(errorFor(R"({"name": "abc", "count": 1, "tags": []})"), "at /tags: expected at least 1 items, got 0");
  EXPECT_EQ(errorFor(R"({"name": "abc", "count": 1, "tags": ["a", ""]})"), "at /tags/1: expected at least 1 characters, got \"\"");
  EXPECT_EQ(errorFor(R"({"name": "abc", "count": 1, "tags": ["a", "b", "c"]})"), "at /tags: expected at most 2 items, got 3");
  EXPECT_EQ(errorFor(R"({"name": "abc", "count": 1, "other": 1})"), "at /: unexpected member \"other\"");
  EXPECT_EQ(errorFor(R"({"name": "abc", "count": 1, "extra": {"a/b": 1}})"), "at /extra/a~1b: expected string or null, got integer");
  EXPECT_EQ(errorFor(R"([1])"), "at /: expected object, got array");
}

// A hostile 200 KB value must not come back whole in the error (and so in a log line).
TEST_F(Validator, ALongOffendingValueIsCutInTheError) {
  const std::string name(200'000, 'A');
  const std::string error = errorFor(("{\"name\": \"" + name + "\", \"count\": 1}").c_str());
  EXPECT_LT(error.size(), 200u) << error.substr(0, 300);
  EXPECT_NE(error.find("... (200002 bytes)"), std::string::npos) << error.substr(0, 300);
}

TEST(SchemaSet, RefusesKeywordsOutsideTheSubset) {
  SchemaSet set;
  auto added = set.add(R"({"$id": "x", "type": "object", "properties": {"a": {"oneOf": []}}})");
  ASSERT_FALSE(added.ok());
  EXPECT_NE(added.error().message.find("unsupported keyword 'oneOf'"), std::string::npos) << added.error().message;
  EXPECT_FALSE(set.add(R"({"type": "object"})").ok());  // no $id
  EXPECT_FALSE(set.add("{").ok());
  EXPECT_FALSE(set.validate("missing", json::object()).ok());
}

TEST(AbiSchemas, AreCompiledInAndAcceptTheDocumentedShapes) {
  const SchemaSet& abi = abiSchemas();
  for (const char* id : {"common", "describe", "list_devices", "slot_types", "alloc_map_spec", "session",
                         "prepare_session", "node_measures", "health"}) {
    EXPECT_TRUE(abi.contains(id)) << id;
  }
  auto ok = [&](const char* id, const char* text) {
    auto result = abi.validate(id, json::parse(text));
    EXPECT_TRUE(result.ok()) << id << ": " << (result.ok() ? "" : result.error().message);
  };
  ok("describe", R"({"key": "cuda", "extra_info": {"driver": "550.54"}})");
  ok("list_devices", R"({"devices": [{"id": "0", "model": "H200", "uuid": "GPU-1", "pci_bus": "0000:3b:00.0",
                          "numa_node": 0, "memory": "150323855360", "processing_units": 132, "health": "healthy"}]})");
  ok("slot_types", R"({"slots": [{"name": "cuda.device", "type": "count"}, {"name": "cuda.device:1g.18gb-mig", "type": "unique"}]})");
  ok("alloc_map_spec", R"({"exclusive": [["cuda.device", "cuda.shares"]],
                           "maps": [{"slot": "cuda.shares", "kind": "fraction", "strategy": "evenly", "quantum": "0.01",
                                     "fragmentation_guard": true, "min_free": "0.1", "devices": [{"id": "0", "capacity": "1"}]}]})");
  ok("session", R"({"session_id": "s1", "allocation": {"cuda.device": {"0": "1"}}})");
  ok("prepare_session", R"({"env": {"CUDA_VISIBLE_DEVICES": "GPU-1"}, "devices": ["/dev/nvidia0"],
                            "mounts": [{"source": "/usr/lib/x", "target": "/opt/x", "read_only": true}], "limits": {}})");
  ok("node_measures", R"({"measures": [{"key": "util", "unit": "percent", "value": "12.5", "per_device": {"0": "12.5"}}]})");
  ok("health", R"({"devices": [{"id": "0", "health": "unhealthy", "reason": "XID 79"}]})");

  auto bad = [&](const char* id, const char* text, const char* mentions) {
    auto result = abi.validate(id, json::parse(text));
    ASSERT_FALSE(result.ok()) << id;
    EXPECT_NE(result.error().message.find(mentions), std::string::npos) << result.error().message;
  };
  bad("list_devices", R"({"devices": [{"id": "0", "memory": 1.5}]})", "/devices/0/memory: expected string");
  bad("list_devices", R"({"devices": [{"id": "0", "memory": "1.2345678"}]})", "/devices/0/memory");
  bad("slot_types", R"({"slots": [{"name": "CUDA", "type": "count"}]})", "/slots/0/name");
  bad("slot_types", R"({"slots": [{"name": "cuda.device", "type": "float"}]})", "/slots/0/type");
  bad("alloc_map_spec", R"({"maps": [{"slot": "x", "kind": "ring", "devices": []}]})", "/maps/0/kind");
  bad("health", R"({"devices": [{"id": "0"}]})", "missing required member \"health\"");
  bad("node_measures", R"({"measures": [{"key": "util", "value": 12.5}]})", "/measures/0/value");
}

}  // namespace
}  // namespace bai::json
