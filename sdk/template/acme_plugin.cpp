// A complete bai accelerator plugin for a made-up "Acme NPU". Copy this folder, rename
// the key, and replace the marked parts with calls into your driver library.
#include <bai/plugin.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Npu {
  std::string id, uuid;
  int numaNode;
  long long memoryBytes;
};

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

class AcmeAccelerator : public bai::plugin::Accelerator {
 public:
  // Discovery happens here. A missing driver is not an error: report zero devices and
  // say why in describe(), so the agent keeps running.
  AcmeAccelerator(const bai::plugin::Host& host, std::string_view /*configJson*/) : host_(host) {
    int count = 2;  // replace: ask your driver
    if (auto configured = host.config("devices")) count = std::stoi(*configured);
    if (count < 0 || count > 64) throw std::invalid_argument("devices must be between 0 and 64");
    for (int i = 0; i < count; ++i) {
      npus_.push_back({std::to_string(i), "ACME-" + std::to_string(1000 + i), i % 2, 16LL << 30});
    }
    host_.info("found " + std::to_string(npus_.size()) + " Acme NPU(s)");
  }

  std::string describe() override {
    return R"({"key": "acme", "extra_info": {"driver": "acme-sim 1.0"}})";
  }

  std::string listDevices() override {
    std::string out = R"({"devices": [)";
    for (std::size_t i = 0; i < npus_.size(); ++i) {
      const Npu& n = npus_[i];
      out += (i ? "," : "") + std::string("{\"id\": ") + quoted(n.id) + ", \"uuid\": " + quoted(n.uuid) +
             R"(, "model": "Acme NPU 1", "numa_node": )" + std::to_string(n.numaNode) +
             ", \"memory\": " + quoted(std::to_string(n.memoryBytes)) +
             R"(, "processing_units": 64, "health": "healthy"})";
    }
    return out + "]}";
  }

  // Every slot starts with the plugin key and a dot.
  std::string slotTypes() override { return R"({"slots": [{"name": "acme.device", "type": "count"}]})"; }

  // One map per slot: whole devices, spread evenly.
  std::string allocMapSpec() override {
    std::string devices;
    for (const Npu& n : npus_) devices += (devices.empty() ? "" : ",") + std::string("{\"id\": ") + quoted(n.id) + R"(, "capacity": "1"})";
    return R"({"maps": [{"slot": "acme.device", "kind": "discrete", "strategy": "evenly", "devices": [)" + devices + "]}]}";
  }

  // Tells the session's process which devices it got. The host passes
  // {"session_id": ..., "allocation": {"acme.device": {"<id>": "1"}}}; a real plugin
  // parses it with its JSON library of choice.
  std::string prepareSession(std::string_view session) override {
    std::string visible;
    for (const Npu& n : npus_) {
      if (session.find("\"" + n.id + "\":") != std::string_view::npos) visible += (visible.empty() ? "" : ",") + n.uuid;
    }
    return R"({"env": {"ACME_VISIBLE_DEVICES": )" + quoted(visible) + "}}";
  }

  void releaseSession(std::string_view /*session*/) override {}  // nothing to undo here

  std::string health() override {
    std::string out = R"({"devices": [)";
    for (std::size_t i = 0; i < npus_.size(); ++i) {
      out += (i ? "," : "") + std::string("{\"id\": ") + quoted(npus_[i].id) + R"(, "health": "healthy"})";
    }
    return out + "]}";
  }

 private:
  const bai::plugin::Host& host_;
  std::vector<Npu> npus_;
};

}  // namespace

BAI_ACCELERATOR_PLUGIN(AcmeAccelerator, "acme", "Acme Corp.", "0.1.0", "acme", "Acme NPUs (template)")
