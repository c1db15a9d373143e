// How much time the cpu plugin adds over hwloc's own topology load, in one process:
//   cpu_plugin_timing PLUGIN.so [RUNS] [TOPOLOGY.xml]
// Each run times hwloc_topology_init+load alone (default settings, then the plugin's),
// and dlopen + info + create + list_devices of the plugin; medians are printed.
#include <bai/accelerator.h>

#include <dlfcn.h>
#include <hwloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double millisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// hwloc's load alone; `likePlugin` applies the plugin's flags and filters.
double timeHwlocLoad(const char* xml, bool likePlugin) {
  const Clock::time_point start = Clock::now();
  hwloc_topology_t topology = nullptr;
  hwloc_topology_init(&topology);
  if (likePlugin) {
    hwloc_topology_set_flags(topology, HWLOC_TOPOLOGY_FLAG_DONT_CHANGE_BINDING);
    hwloc_topology_set_cache_types_filter(topology, HWLOC_TYPE_FILTER_KEEP_NONE);
    hwloc_topology_set_icache_types_filter(topology, HWLOC_TYPE_FILTER_KEEP_NONE);
  }
  if (xml != nullptr) hwloc_topology_set_xml(topology, xml);
  if (hwloc_topology_load(topology) != 0) std::perror("hwloc_topology_load");
  const double elapsed = millisecondsSince(start);
  hwloc_topology_destroy(topology);
  return elapsed;
}

void ignoreLog(void*, int32_t, const char*) {}

struct PluginTimes {
  double total = 0;  // dlopen + info + entry + create + list_devices
  double create = 0;
  double listDevices = 0;
};

PluginTimes timePlugin(const char* path, const std::string& config) {
  PluginTimes times;
  const Clock::time_point start = Clock::now();
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    std::fprintf(stderr, "dlopen: %s\n", dlerror());
    std::exit(1);
  }
  const auto* info = static_cast<const bai_plugin_info*>(dlsym(handle, BAI_ACCELERATOR_INFO_SYMBOL));
  auto entry = reinterpret_cast<bai_accelerator_entry_fn>(dlsym(handle, BAI_ACCELERATOR_ENTRY_SYMBOL));
  if (info == nullptr || entry == nullptr || info->abi_major != BAI_ACCELERATOR_ABI_MAJOR) std::exit(1);
  const bai_accelerator_vtable* vtable = entry();
  bai_host_services services = {BAI_ACCELERATOR_ABI_MAJOR, BAI_ACCELERATOR_ABI_MINOR, sizeof(bai_host_services), 0,
                                nullptr, &ignoreLog, nullptr};
  bai_accelerator* instance = nullptr;
  const Clock::time_point createStart = Clock::now();
  if (vtable->create(&services, config.c_str(), &instance) != BAI_OK) std::exit(1);
  times.create = millisecondsSince(createStart);
  char* devices = nullptr;
  const Clock::time_point listStart = Clock::now();
  if (vtable->list_devices(instance, &devices) != BAI_OK) std::exit(1);
  times.listDevices = millisecondsSince(listStart);
  times.total = millisecondsSince(start);
  vtable->free_string(devices);
  vtable->destroy(instance);
  dlclose(handle);
  return times;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PLUGIN.so [RUNS] [TOPOLOGY.xml]\n", argv[0]);
    return 2;
  }
  const int runs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 21;
  const char* xml = argc > 3 ? argv[3] : nullptr;
  const std::string config = xml != nullptr ? std::string(R"({"topology_xml":")") + xml + "\"}" : "{}";
  std::vector<double> hwlocDefault, hwlocLikePlugin, pluginTotal, pluginCreate, pluginList;
  for (int run = 0; run < runs; ++run) {
    // Alternate the order so that neither side always runs on a warmer cache.
    if (run % 2 == 0) hwlocDefault.push_back(timeHwlocLoad(xml, false));
    const PluginTimes plugin = timePlugin(argv[1], config);
    if (run % 2 == 1) hwlocDefault.push_back(timeHwlocLoad(xml, false));
    hwlocLikePlugin.push_back(timeHwlocLoad(xml, true));
    pluginTotal.push_back(plugin.total);
    pluginCreate.push_back(plugin.create);
    pluginList.push_back(plugin.listDevices);
  }
  std::printf("topology: %s, %d runs, medians in ms\n", xml != nullptr ? xml : "this machine", runs);
  std::printf("hwloc init+load, default settings:           %.3f\n", median(hwlocDefault));
  std::printf("hwloc init+load, the plugin's settings:      %.3f\n", median(hwlocLikePlugin));
  std::printf("plugin dlopen+info+create+list_devices:      %.3f\n", median(pluginTotal));
  std::printf("  of which create:                           %.3f\n", median(pluginCreate));
  std::printf("  of which list_devices:                     %.3f\n", median(pluginList));
  std::printf("plugin total minus hwloc default load:       %.3f\n", median(pluginTotal) - median(hwlocDefault));
  std::printf("plugin total minus hwloc load, same settings: %.3f\n", median(pluginTotal) - median(hwlocLikePlugin));
  return 0;
}
