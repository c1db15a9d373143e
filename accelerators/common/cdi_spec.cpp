#include "cdi_spec.hpp"

#include "bounded_json.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace bai::accel {
namespace {

namespace fs = std::filesystem;

// A spec is a few kilobytes; a file far larger is not one.
constexpr std::uintmax_t kMaxSpecBytes = 4 << 20;

Failure<Error> badSpec(const std::string& why) { return fail(ErrorCode::InvalidArgument, why); }

// ---- YAML, block style ----------------------------------------------------------------

struct YamlLine {
  std::size_t number = 0;  // 1-based, for errors
  std::size_t indent = 0;
  std::string text;        // without the indentation
};

// The lines that carry content: no blank lines, comments or document markers.
std::vector<YamlLine> contentLines(std::string_view text) {
  std::vector<YamlLine> lines;
  std::size_t number = 0;
  for (std::size_t start = 0; start <= text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(start, end - start));
    start = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::size_t indent = line.find_first_not_of(' ');
    if (indent == std::string::npos || line[indent] == '#') continue;
    if (indent == 0 && (line.rfind("---", 0) == 0 || line.rfind("...", 0) == 0)) continue;
    if (line.find('\t') < indent) continue;  // YAML forbids tabs in indentation; not content we read
    lines.push_back({number, indent, line.substr(indent)});
  }
  return lines;
}

// A scalar value: "double quoted", 'single quoted' or plain (up to a " #" comment).
Result<std::string> yamlScalar(std::string value, std::size_t line) {
  const std::string where = "line " + std::to_string(line) + ": ";
  while (!value.empty() && value.back() == ' ') value.pop_back();
  if (value.empty()) return badSpec(where + "expected a value");
  if (value.front() == '"' || value.front() == '\'') {
    const char quote = value.front();
    std::string out;
    for (std::size_t i = 1; i < value.size(); ++i) {
      const char c = value[i];
      if (quote == '\'' && c == '\'' && i + 1 < value.size() && value[i + 1] == '\'') {
        out += '\'';
        ++i;
      } else if (quote == '"' && c == '\\' && i + 1 < value.size()) {
        const char escaped = value[++i];
        if (escaped != '"' && escaped != '\\' && escaped != '/') return badSpec(where + "an escape this reader does not decode");
        out += escaped;
      } else if (c == quote) {
        return out;
      } else {
        out += c;
      }
    }
    return badSpec(where + "a quoted value without its closing quote");
  }
  if (std::string("[{&*!|>%@`").find(value.front()) != std::string::npos) {
    return badSpec(where + "'" + value + "': flow collections, anchors, aliases, tags and block scalars are not read here");
  }
  if (std::size_t comment = value.find(" #"); comment != std::string::npos) value.erase(comment);
  while (!value.empty() && value.back() == ' ') value.pop_back();
  return value;
}

// "key: value" or "key:" -> {key, value}; nullopt for a line that is not a mapping entry.
std::optional<std::pair<std::string, std::string>> yamlEntry(const std::string& text) {
  std::size_t colon = text.find(": ");
  if (colon == std::string::npos && !text.empty() && text.back() == ':') colon = text.size() - 1;
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  std::string key = text.substr(0, colon);
  if (key.front() == '"' || key.front() == '\'') key = key.substr(1, key.size() - 2);
  std::string value = colon + 1 < text.size() ? text.substr(colon + 2) : "";
  value.erase(0, std::min(value.find_first_not_of(' '), value.size()));
  return std::pair{key, value};
}

bool isComment(const std::string& value) { return value.empty() || value.front() == '#'; }

}  // namespace

Result<CdiSpec> readCdiJson(std::string_view text) {
  internal::BoundedJson parsed = internal::parseBoundedJson(text);
  if (!parsed) return badSpec("not JSON: " + parsed.error);
  const nlohmann::json& spec = parsed.document;
  if (!spec.is_object()) return badSpec("expected a JSON object");
  if (!spec.contains("kind") || !spec["kind"].is_string()) return badSpec("kind: expected a string");
  CdiSpec result{spec["kind"].get<std::string>(), {}};
  const nlohmann::json devices = spec.value("devices", nlohmann::json::array());
  if (!devices.is_array()) return badSpec("devices: expected a list");
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (!devices[i].is_object() || !devices[i].contains("name") || !devices[i]["name"].is_string()) {
      return badSpec("devices[" + std::to_string(i) + "].name: expected a string");
    }
    result.deviceNames.push_back(devices[i]["name"].get<std::string>());
  }
  return result;
}

// Only three keys matter, at known places: `kind` and `devices` at the top level, and
// `name` in each mapping item of `devices` (a sequence indented under it, or at its
// column as Go's YAML writer puts it). Lines deeper inside an item are skipped.
Result<CdiSpec> readCdiYaml(std::string_view text) {
  CdiSpec spec;
  bool haveKind = false;
  bool inDevices = false;
  constexpr std::size_t kNoItemYet = std::string::npos;
  std::size_t itemIndent = kNoItemYet;  // the column of the devices' "- "
  for (const YamlLine& line : contentLines(text)) {
    const std::string where = "line " + std::to_string(line.number) + ": ";
    const bool item = line.text == "-" || line.text.rfind("- ", 0) == 0;
    if (line.indent == 0 && !item) {
      inDevices = false;
      auto entry = yamlEntry(line.text);
      if (!entry) return badSpec(where + "expected \"key: value\" at the top level");
      if (entry->first == "kind") {
        auto kind = yamlScalar(entry->second, line.number);
        if (!kind) return Failure{kind.error()};
        spec.kind = *kind;
        haveKind = true;
      } else if (entry->first == "devices") {
        if (entry->second == "[]") continue;
        if (!isComment(entry->second)) return badSpec(where + "devices: expected a block list of devices");
        inDevices = true;
        itemIndent = kNoItemYet;
      }
      continue;
    }
    if (!inDevices) continue;
    if (itemIndent == kNoItemYet && item) itemIndent = line.indent;
    if (itemIndent == kNoItemYet || line.indent < itemIndent) {
      return badSpec(where + "expected a device (\"- name: ...\") under devices");
    }
    const std::size_t keyIndent = itemIndent + 2;
    std::string entryText;
    if (line.indent == itemIndent) {
      if (!item) return badSpec(where + "expected a device (\"- name: ...\") under devices");
      entryText = line.text == "-" ? "" : line.text.substr(2);
      entryText.erase(0, std::min(entryText.find_first_not_of(' '), entryText.size()));
    } else if (line.indent == keyIndent && !item) {
      entryText = line.text;
    } else {
      continue;  // inside a device's other keys
    }
    if (entryText.empty()) continue;
    auto entry = yamlEntry(entryText);
    if (!entry) return badSpec(where + "expected \"key: value\" in a device");
    if (entry->first != "name") continue;
    auto name = yamlScalar(entry->second, line.number);
    if (!name) return Failure{name.error()};
    spec.deviceNames.push_back(*name);
  }
  if (!haveKind) return badSpec("no top-level kind");
  return spec;
}

CdiScan scanCdiSpecs(const std::vector<std::string>& dirs, const std::string& kind) {
  CdiScan scan;
  for (const std::string& dir : dirs) {
    std::error_code error;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
      const std::string extension = entry.path().extension().string();
      if (extension == ".json" || extension == ".yaml" || extension == ".yml") files.push_back(entry.path());
    }
    if (error && error != std::errc::no_such_file_or_directory) {
      scan.problems.push_back(dir + ": " + error.message());
      continue;
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      std::error_code sizeError;
      const std::uintmax_t size = fs::file_size(file, sizeError);
      if (sizeError || size > kMaxSpecBytes) {
        scan.problems.push_back(file.string() + ": " + (sizeError ? sizeError.message() : "over 4 MiB, not a CDI spec"));
        continue;
      }
      std::ifstream in(file);
      if (!in.is_open()) {
        scan.problems.push_back(file.string() + ": cannot be opened");
        continue;
      }
      std::stringstream text;
      text << in.rdbuf();
      Result<CdiSpec> spec = file.extension() == ".json" ? readCdiJson(text.str()) : readCdiYaml(text.str());
      if (!spec) {
        scan.problems.push_back(file.string() + ": " + spec.error().message);
        continue;
      }
      if (spec->kind != kind) continue;
      scan.specFiles.push_back(file.string());
      scan.deviceNames.insert(spec->deviceNames.begin(), spec->deviceNames.end());
    }
  }
  return scan;
}

}  // namespace bai::accel
