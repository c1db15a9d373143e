#include "runtime/engine_replies.hpp"

#include "parse_json.hpp"

#include <charconv>
#include <ctime>

namespace bai::core {
namespace {

using nlohmann::json;

// A string field: "" when absent or null, an error when of another type.
Result<std::string> textField(const json& object, const char* key, const char* what) {
  auto found = object.find(key);
  if (found == object.end() || found->is_null()) return std::string();
  if (!found->is_string()) return fail(ErrorCode::Internal, std::string(what) + ": " + key + " is not a string");
  return found->get<std::string>();
}

Result<std::int64_t> integerField(const json& object, const char* key, const char* what) {
  auto found = object.find(key);
  if (found == object.end() || found->is_null()) return std::int64_t{0};
  if (!found->is_number_integer()) return fail(ErrorCode::Internal, std::string(what) + ": " + key + " is not an integer");
  return found->get<std::int64_t>();
}

Result<std::map<std::string, std::string>> labelsField(const json& object, const char* key, const char* what) {
  std::map<std::string, std::string> labels;
  auto found = object.find(key);
  if (found == object.end() || found->is_null()) return labels;
  if (!found->is_object()) return fail(ErrorCode::Internal, std::string(what) + ": " + key + " is not an object");
  for (const auto& [name, value] : found->items()) {
    if (!value.is_string()) return fail(ErrorCode::Internal, std::string(what) + ": label " + name + " is not a string");
    labels.emplace(name, value.get<std::string>());
  }
  return labels;
}

Result<void> requireObject(const json& value, const char* what) {
  if (!value.is_object()) return fail(ErrorCode::Internal, std::string(what) + ": not a JSON object");
  return {};
}

Result<ImageRecord> readImage(const json& image, const char* what) {
  if (auto object = requireObject(image, what); !object) return Failure{object.error()};
  ImageRecord record;
  auto id = textField(image, "Id", what);
  if (!id) return Failure{id.error()};
  if (id->empty()) return fail(ErrorCode::Internal, std::string(what) + ": no Id");
  record.id = std::move(*id);
  if (auto tags = image.find("RepoTags"); tags != image.end() && !tags->is_null()) {
    if (!tags->is_array()) return fail(ErrorCode::Internal, std::string(what) + ": RepoTags is not an array");
    for (const auto& tag : *tags) {
      if (!tag.is_string()) return fail(ErrorCode::Internal, std::string(what) + ": a RepoTags entry is not a string");
      record.repoTags.push_back(tag.get<std::string>());
    }
  }
  auto size = integerField(image, "Size", what);
  if (!size) return Failure{size.error()};
  record.sizeBytes = *size;
  return record;
}

// Digits of a fixed width at `at`, or nullopt.
std::optional<int> digits(std::string_view text, std::size_t at, std::size_t width) {
  if (at + width > text.size()) return std::nullopt;
  int value = 0;
  auto [end, error] = std::from_chars(text.data() + at, text.data() + at + width, value);
  if (error != std::errc() || end != text.data() + at + width) return std::nullopt;
  return value;
}

}  // namespace

Result<std::int64_t> rfc3339Millis(std::string_view text) {
  const auto bad = [&] { return fail(ErrorCode::Internal, "not an RFC 3339 time: " + std::string(text.substr(0, 64))); };
  // YYYY-MM-DDTHH:MM:SS
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') || text[13] != ':' ||
      text[16] != ':') {
    return bad();
  }
  const auto year = digits(text, 0, 4), month = digits(text, 5, 2), day = digits(text, 8, 2);
  const auto hour = digits(text, 11, 2), minute = digits(text, 14, 2), second = digits(text, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second || *month < 1 || *month > 12 || *day < 1 || *day > 31 ||
      *hour > 23 || *minute > 59 || *second > 60) {
    return bad();
  }
  if (*year <= 1) return std::int64_t{0};  // Go's zero time: not finished
  std::size_t at = 19;
  std::int64_t millis = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    const std::size_t first = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') ++at;
    if (at == first || at - first > 9) return bad();
    for (std::size_t i = first; i < first + 3; ++i) millis = millis * 10 + (i < at ? text[i] - '0' : 0);
  }
  std::int64_t offsetSeconds = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at + 6 == text.size() && (text[at] == '+' || text[at] == '-') && text[at + 3] == ':') {
    const auto offsetHours = digits(text, at + 1, 2), offsetMinutes = digits(text, at + 4, 2);
    if (!offsetHours || !offsetMinutes) return bad();
    offsetSeconds = (*offsetHours * 3600 + *offsetMinutes * 60) * (text[at] == '+' ? 1 : -1);
    at += 6;
  } else {
    return bad();
  }
  if (at != text.size()) return bad();
  std::tm fields{};
  fields.tm_year = *year - 1900;
  fields.tm_mon = *month - 1;
  fields.tm_mday = *day;
  fields.tm_hour = *hour;
  fields.tm_min = *minute;
  fields.tm_sec = *second;
  const std::int64_t seconds = static_cast<std::int64_t>(timegm(&fields)) - offsetSeconds;
  return seconds * 1000 + millis;
}

Result<EngineInfo> readEngineVersion(const json& version, std::string_view libpodApiVersion) {
  const char* what = "engine version";
  if (auto object = requireObject(version, what); !object) return Failure{object.error()};
  EngineInfo info;
  bool podman = !libpodApiVersion.empty();
  if (auto components = version.find("Components"); components != version.end() && components->is_array()) {
    for (const auto& component : *components) {
      if (component.is_object() && component.value("Name", json()).is_string() &&
          component["Name"].get<std::string>() == "Podman Engine") {
        podman = true;
      }
    }
  }
  info.flavor = podman ? EngineFlavor::Podman : EngineFlavor::Docker;
  auto engineVersion = textField(version, "Version", what);
  if (!engineVersion) return Failure{engineVersion.error()};
  auto apiVersion = textField(version, "ApiVersion", what);
  if (!apiVersion) return Failure{apiVersion.error()};
  if (apiVersion->empty()) return fail(ErrorCode::Internal, "engine version: no ApiVersion");
  info.version = std::move(*engineVersion);
  info.apiVersion = std::move(*apiVersion);
  return info;
}

Result<std::vector<ImageRecord>> readImageList(const json& images) {
  if (!images.is_array()) return fail(ErrorCode::Internal, "image list: not a JSON array");
  std::vector<ImageRecord> records;
  for (const auto& image : images) {
    auto record = readImage(image, "image list");
    if (!record) return Failure{record.error()};
    records.push_back(std::move(*record));
  }
  return records;
}

Result<ImageRecord> readImageInspect(const json& image) {
  auto record = readImage(image, "image");
  if (!record) return record;
  if (auto config = image.find("Config"); config != image.end() && !config->is_null()) {
    if (!config->is_object()) return fail(ErrorCode::Internal, "image: Config is not an object");
    auto labels = labelsField(*config, "Labels", "image Config");
    if (!labels) return Failure{labels.error()};
    record->labels = std::move(*labels);
  }
  return record;
}

Result<std::string> readCreatedId(const json& created) {
  if (auto object = requireObject(created, "created object"); !object) return Failure{object.error()};
  auto id = textField(created, "Id", "created object");
  if (!id) return Failure{id.error()};
  if (id->empty()) return fail(ErrorCode::Internal, "created object: no Id");
  return id;
}

namespace {

// NetworkSettings.IPAddress (the default bridge), else the first network's non-empty one
// (Podman and user-defined networks leave the top-level field empty).
Result<std::string> readIpAddress(const json& container) {
  auto settings = container.find("NetworkSettings");
  if (settings == container.end() || settings->is_null()) return std::string();
  if (!settings->is_object()) return fail(ErrorCode::Internal, "container: NetworkSettings is not an object");
  auto address = textField(*settings, "IPAddress", "container NetworkSettings");
  if (!address || !address->empty()) return address;
  auto networks = settings->find("Networks");
  if (networks == settings->end() || networks->is_null()) return std::string();
  if (!networks->is_object()) return fail(ErrorCode::Internal, "container NetworkSettings: Networks is not an object");
  for (const auto& [name, network] : networks->items()) {
    if (!network.is_object()) return fail(ErrorCode::Internal, "container network " + name + ": not an object");
    auto inNetwork = textField(network, "IPAddress", "container network");
    if (!inNetwork || !inNetwork->empty()) return inNetwork;
  }
  return std::string();
}

}  // namespace

Result<ContainerState> readContainerInspect(const json& container) {
  const char* what = "container";
  if (auto object = requireObject(container, what); !object) return Failure{object.error()};
  ContainerState state;
  auto id = textField(container, "Id", what);
  if (!id) return Failure{id.error()};
  state.id = std::move(*id);
  auto name = textField(container, "Name", what);
  if (!name) return Failure{name.error()};
  state.name = name->rfind('/', 0) == 0 ? name->substr(1) : *name;

  auto stateField = container.find("State");
  if (stateField == container.end() || !stateField->is_object()) return fail(ErrorCode::Internal, "container: no State object");
  const json& engineState = *stateField;
  auto status = textField(engineState, "Status", "container State");
  if (!status) return Failure{status.error()};
  state.status = std::move(*status);
  if (auto running = engineState.find("Running"); running != engineState.end() && running->is_boolean()) {
    state.running = running->get<bool>();
  }
  if (auto oom = engineState.find("OOMKilled"); oom != engineState.end() && oom->is_boolean()) {
    state.oomKilled = oom->get<bool>();
  }
  auto exitCode = integerField(engineState, "ExitCode", "container State");
  if (!exitCode) return Failure{exitCode.error()};
  if (*exitCode < -1 || *exitCode > 255) {
    return fail(ErrorCode::Internal, "container State: ExitCode " + std::to_string(*exitCode) + " out of range");
  }
  state.exitCode = static_cast<int>(*exitCode);
  auto error = textField(engineState, "Error", "container State");
  if (!error) return Failure{error.error()};
  state.error = std::move(*error);
  auto pid = integerField(engineState, "Pid", "container State");
  if (!pid) return Failure{pid.error()};
  state.pid = *pid;
  auto finishedAt = textField(engineState, "FinishedAt", "container State");
  if (!finishedAt) return Failure{finishedAt.error()};
  if (!finishedAt->empty()) {
    auto millis = rfc3339Millis(*finishedAt);
    if (!millis) return Failure{Error{ErrorCode::Internal, "container State.FinishedAt: " + millis.error().message}};
    state.finishedAtMillis = *millis;
  }
  if (auto config = container.find("Config"); config != container.end() && config->is_object()) {
    auto labels = labelsField(*config, "Labels", "container Config");
    if (!labels) return Failure{labels.error()};
    state.labels = std::move(*labels);
  }
  auto address = readIpAddress(container);
  if (!address) return Failure{address.error()};
  state.ipAddress = std::move(*address);
  return state;
}

Result<bool> readContainerTty(const json& container) {
  if (auto object = requireObject(container, "container"); !object) return Failure{object.error()};
  auto config = container.find("Config");
  if (config == container.end() || !config->is_object()) return fail(ErrorCode::Internal, "container: no Config object");
  auto tty = config->find("Tty");
  if (tty == config->end() || tty->is_null()) return false;
  if (!tty->is_boolean()) return fail(ErrorCode::Internal, "container Config: Tty is not a boolean");
  return tty->get<bool>();
}

Result<ExecState> readExecInspect(const json& exec) {
  const char* what = "exec";
  if (auto object = requireObject(exec, what); !object) return Failure{object.error()};
  ExecState state;
  auto running = exec.find("Running");
  if (running == exec.end() || !running->is_boolean()) return fail(ErrorCode::Internal, "exec: no boolean Running");
  state.running = running->get<bool>();
  auto pid = integerField(exec, "Pid", what);
  if (!pid) return Failure{pid.error()};
  state.pid = *pid;
  auto exitCode = integerField(exec, "ExitCode", what);
  if (!exitCode) return Failure{exitCode.error()};
  if (*exitCode < -1 || *exitCode > 255) {
    return fail(ErrorCode::Internal, "exec: ExitCode " + std::to_string(*exitCode) + " out of range");
  }
  // The engines report 0 while it runs: the code means something only once it ended.
  if (!state.running) state.exitCode = static_cast<int>(*exitCode);
  return state;
}

Result<std::vector<ContainerListing>> readContainerList(const json& containers) {
  const char* what = "container list";
  if (!containers.is_array()) return fail(ErrorCode::Internal, "container list: not a JSON array");
  std::vector<ContainerListing> listings;
  for (const auto& container : containers) {
    if (auto object = requireObject(container, what); !object) return Failure{object.error()};
    ContainerListing listing;
    auto id = textField(container, "Id", what);
    if (!id) return Failure{id.error()};
    if (id->empty()) return fail(ErrorCode::Internal, "container list: an entry without Id");
    listing.id = std::move(*id);
    if (auto names = container.find("Names"); names != container.end() && names->is_array() && !names->empty() &&
                                               names->front().is_string()) {
      const std::string name = names->front().get<std::string>();
      listing.name = name.rfind('/', 0) == 0 ? name.substr(1) : name;
    }
    auto state = textField(container, "State", what);
    if (!state) return Failure{state.error()};
    listing.state = std::move(*state);
    auto labels = labelsField(container, "Labels", what);
    if (!labels) return Failure{labels.error()};
    listing.labels = std::move(*labels);
    listings.push_back(std::move(listing));
  }
  return listings;
}

Result<int> readDockerWait(const json& waited) {
  if (auto object = requireObject(waited, "wait"); !object) return Failure{object.error()};
  if (auto error = waited.find("Error"); error != waited.end() && error->is_object()) {
    auto message = textField(*error, "Message", "wait Error");
    if (message && !message->empty()) return fail(ErrorCode::Internal, "wait: " + *message);
  }
  auto code = waited.find("StatusCode");
  if (code == waited.end() || !code->is_number_integer()) return fail(ErrorCode::Internal, "wait: no StatusCode");
  const auto value = code->get<std::int64_t>();
  if (value < -1 || value > 255) return fail(ErrorCode::Internal, "wait: StatusCode " + std::to_string(value) + " out of range");
  return static_cast<int>(value);
}

Result<int> readPodmanWait(std::string_view body) {
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) body.remove_suffix(1);
  int code = 0;
  auto [end, error] = std::from_chars(body.data(), body.data() + body.size(), code);
  if (body.empty() || error != std::errc() || end != body.data() + body.size() || code < -1 || code > 255) {
    return fail(ErrorCode::Internal, "wait: not an exit code: " + std::string(body.substr(0, 64)));
  }
  return code;
}

ErrorCode engineErrorCode(unsigned status, std::string_view body) {
  switch (status) {
    case 400: return ErrorCode::InvalidArgument;
    case 404: return ErrorCode::NotFound;
    case 409: return ErrorCode::Conflict;
    default: break;
  }
  if (status == 500) {
    auto parsed = parseJson(body);
    if (parsed && parsed->is_object() && parsed->value("cause", json()) == "container state improper") {
      return ErrorCode::Conflict;
    }
  }
  return ErrorCode::Internal;
}

std::string engineErrorMessage(std::string_view body) {
  constexpr std::size_t kShownBytes = 512;
  auto parsed = parseJson(body);
  if (parsed && parsed->is_object()) {
    auto message = parsed->find("message");
    if (message != parsed->end() && message->is_string()) return message->get<std::string>().substr(0, 4096);
  }
  std::string text(body.substr(0, kShownBytes));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text.empty() ? std::string("(no message)") : text;
}

}  // namespace bai::core
