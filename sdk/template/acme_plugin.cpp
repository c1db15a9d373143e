// A complete bai accelerator plugin for a made-up "Acme NPU". Copy this folder, rename
// the key, and replace the parts marked "replace:" with calls into your driver library.
#include <bai/plugin.hpp>

#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Npu {
  std::string id, uuid;
  int numaNode;  // -1 when unknown: never guess, the agent places CPUs by it
  long long memoryBytes;
};

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

// Every config key the plugin takes, declared once: name, type, default, description.
// A plugin with a JSON library also refuses the keys this table lacks (findConfigKey).
constexpr bai::plugin::ConfigKey kConfigKeys[] = {
    {"devices", "a whole number from 0 to 64", "2", "how many NPUs to simulate (replace: ask your driver)"},
};

// The config value of `devices` (JSON text, as the host hands it over), or its default.
int deviceCount(const bai::plugin::Host& host) {
  const bai::plugin::ConfigKey& key = kConfigKeys[0];
  const std::string digits = host.config(key.name).value_or(std::string(key.defaultValue));
  if (digits.empty() || digits.size() > 2 || digits.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(digits) > 64) {
    throw std::invalid_argument("config key '" + std::string(key.name) + "' must be " + std::string(key.type) + ", got " +
                                digits);
  }
  return std::stoi(digits);
}

// The "session_id" of a session document. A real plugin parses it with its JSON library.
std::string sessionIdOf(std::string_view session) {
  const std::string_view field = "\"session_id\":";
  const std::size_t at = session.find(field);
  const std::size_t start = at == std::string_view::npos ? at : session.find('"', at + field.size());
  const std::size_t end = start == std::string_view::npos ? start : session.find('"', start + 1);
  if (end == std::string_view::npos || end == start + 1) throw std::invalid_argument("the session has no session_id");
  return std::string(session.substr(start + 1, end - start - 1));
}

class AcmeAccelerator : public bai::plugin::Accelerator {
 public:
  // Discovery happens here. A missing driver is not an error: report zero devices and
  // say why in describe(), so the agent keeps running.
  AcmeAccelerator(const bai::plugin::Host& host, std::string_view /*configJson*/) : host_(host) {
    const int count = deviceCount(host);
    for (int i = 0; i < count; ++i) {
      // replace: read each device's uuid, NUMA node and memory from your driver
      npus_.push_back({std::to_string(i), "ACME-" + std::to_string(1000 + i), -1, 16LL << 30});
    }
    host_.info("found " + std::to_string(npus_.size()) + " Acme NPU(s)");
  }

  std::string describe() override { return R"({"key": "acme", "extra_info": {"driver": "acme-sim 1.0"}})"; }

  std::string listDevices() override {
    std::string out = R"({"devices": [)";
    for (const Npu& n : npus_) {
      if (&n != &npus_.front()) out += ",";
      out += R"({"id": )" + quoted(n.id) + R"(, "uuid": )" + quoted(n.uuid) + R"(, "model": "Acme NPU 1", "numa_node": )";
      out += std::to_string(n.numaNode) + R"(, "memory": )" + quoted(std::to_string(n.memoryBytes));
      out += R"(, "processing_units": 64, "health": "healthy"})";
    }
    return out + "]}";
  }

  // Every slot starts with the plugin key and a dot.
  std::string slotTypes() override { return R"({"slots": [{"name": "acme.device", "type": "count"}]})"; }

  // One map per slot: whole devices, spread evenly.
  std::string allocMapSpec() override {
    std::string devices;
    for (const Npu& n : npus_) {
      if (!devices.empty()) devices += ",";
      devices += R"({"id": )" + quoted(n.id) + R"(, "capacity": "1"})";
    }
    return R"({"maps": [{"slot": "acme.device", "kind": "discrete", "strategy": "evenly", "devices": [)" + devices + "]}]}";
  }

  // Tells the session's process which devices it got. The host passes
  // {"session_id": ..., "allocation": {"acme.device": {"<id>": "1"}}}; a real plugin
  // parses it with its JSON library of choice.
  // Each session id is prepared once until released: the agent relies on it, and
  // bai-plugin-check tests it. A real plugin also lists the device nodes the session
  // opens ("devices": [{"path": "/dev/acme0"}]): the agent lets it open those and no
  // other (docs/plugin-guide.md#what-a-session-receives). For container sessions, when
  // the node has a CDI spec for your devices, add their CDI names too
  // ("cdi_devices": ["acme.com/npu=NPU-0"]): the container engine then injects the nodes
  // and your driver's files itself; without one, add your driver's libraries as
  // read-only "mounts". Send both forms: the agent's runtime picks the one it uses.
  std::string prepareSession(std::string_view session) override {
    const std::string id = sessionIdOf(session);
    if (prepared_.count(id) != 0) throw std::invalid_argument("session " + id + " is prepared already");
    std::string visible;
    for (const Npu& n : npus_) {
      if (session.find("\"" + n.id + "\":") == std::string_view::npos) continue;
      if (!visible.empty()) visible += ",";
      visible += n.uuid;
    }
    prepared_.insert(id);
    return R"({"env": {"ACME_VISIBLE_DEVICES": )" + quoted(visible) + "}}";
  }

  // An id that is not prepared is BAI_ERR_NOT_FOUND (an agent that restarted may ask).
  void releaseSession(std::string_view session) override {
    const std::string id = sessionIdOf(session);
    if (prepared_.erase(id) == 0) throw bai::plugin::StatusError(BAI_ERR_NOT_FOUND, "session " + id + " is not prepared");
  }

  std::string health() override {
    std::string out = R"({"devices": [)";
    for (const Npu& n : npus_) {
      if (&n != &npus_.front()) out += ",";
      out += R"({"id": )" + quoted(n.id) + R"(, "health": "healthy"})";  // replace: ask your driver
    }
    return out + "]}";
  }

 private:
  const bai::plugin::Host& host_;
  std::vector<Npu> npus_;
  std::set<std::string> prepared_;  // ids of the prepared sessions
};

}  // namespace

BAI_ACCELERATOR_PLUGIN(AcmeAccelerator, "acme", "Acme Corp.", "0.1.0", "acme", "Acme NPUs (template)")
