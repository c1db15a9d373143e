// Times the mock plugin by phase (dlopen + info, create, list_devices, destroy, dlclose)
// for the 4-GPU and the 1,024-GPU samples, next to a bare dlopen of an empty library in
// the same process. Prints the first run and the median of repeated runs, in microseconds;
// then the 4-GPU case again with toml++ already loaded, as it is in the agent.
//
//   mock_timing [MOCK_SO EMPTY_SO CONFIG_DIR [REPEATS]]
#include <bai/accelerator.h>

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kTomlLibrary = "libtomlplusplus.so.3";

struct Phases {
  double open = 0;  // dlopen + dlsym of both symbols + the entry call
  double create = 0;
  double list = 0;
  double destroy = 0;
  double close = 0;
};

double microsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "mock_timing: %s\n", message.c_str());
  std::exit(1);
}

Phases runEmpty(const std::string& path) {
  Phases phases;
  auto start = Clock::now();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  phases.open = microsSince(start);
  if (handle == nullptr) die(dlerror());
  start = Clock::now();
  dlclose(handle);
  phases.close = microsSince(start);
  return phases;
}

Phases runMock(const std::string& path, const std::string& configJson) {
  Phases phases;
  auto start = Clock::now();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) die(dlerror());
  auto* info = static_cast<const bai_plugin_info*>(dlsym(handle, BAI_ACCELERATOR_INFO_SYMBOL));
  auto entry = reinterpret_cast<bai_accelerator_entry_fn>(dlsym(handle, BAI_ACCELERATOR_ENTRY_SYMBOL));
  if (info == nullptr || entry == nullptr || info->abi_major != BAI_ACCELERATOR_ABI_MAJOR) die("bad plugin " + path);
  const bai_accelerator_vtable* vtable = entry();
  phases.open = microsSince(start);

  bai_host_services services = {
      BAI_ACCELERATOR_ABI_MAJOR, BAI_ACCELERATOR_ABI_MINOR, sizeof(bai_host_services), 0, nullptr, nullptr, nullptr};
  bai_accelerator* instance = nullptr;
  start = Clock::now();
  if (vtable->create(&services, configJson.c_str(), &instance) != BAI_OK) die("create failed: " + configJson);
  phases.create = microsSince(start);

  char* devices = nullptr;
  start = Clock::now();
  if (vtable->list_devices(instance, &devices) != BAI_OK) die("list_devices failed");
  vtable->free_string(devices);
  phases.list = microsSince(start);

  start = Clock::now();
  vtable->destroy(instance);
  phases.destroy = microsSince(start);
  start = Clock::now();
  dlclose(handle);
  phases.close = microsSince(start);
  return phases;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

void report(const char* name, const std::vector<Phases>& runs) {
  auto column = [&](double Phases::*phase) {
    std::vector<double> values;
    for (const Phases& run : runs) values.push_back(run.*phase);
    return median(values);
  };
  const Phases& first = runs.front();
  std::printf("%-22s first  open %8.1f  create %8.1f  list %8.1f  destroy %7.1f  close %7.1f  total %8.1f\n", name,
              first.open, first.create, first.list, first.destroy, first.close, first.open + first.create + first.list);
  double open = column(&Phases::open), create = column(&Phases::create), list = column(&Phases::list);
  std::printf("%-22s median open %8.1f  create %8.1f  list %8.1f  destroy %7.1f  close %7.1f  total %8.1f\n", "", open,
              create, list, column(&Phases::destroy), column(&Phases::close), open + create + list);
}

}  // namespace

int main(int argc, char** argv) {
  std::string mockPath = argc > 3 ? argv[1] : BAI_MOCK_PLUGIN_PATH;
  std::string emptyPath = argc > 3 ? argv[2] : BAI_EMPTY_MODULE_PATH;
  std::string configDir = argc > 3 ? argv[3] : BAI_MOCK_CONFIG_DIR;
  int repeats = argc > 4 ? std::atoi(argv[4]) : 200;
  if (repeats < 1) die("REPEATS must be at least 1");
  std::string four = "{\"config_file\": \"" + configDir + "/mock-4xa100.toml\"}";
  std::string thousand = "{\"config_file\": \"" + configDir + "/mock-1024.toml\"}";

  std::vector<Phases> empty, mock4, mock1024;
  for (int i = 0; i < repeats; ++i) {
    empty.push_back(runEmpty(emptyPath));
    mock4.push_back(runMock(mockPath, four));
    mock1024.push_back(runMock(mockPath, thousand));
  }
  std::printf("microseconds; first = first load in this process, median of %d runs\n", repeats);
  report("empty .so (bare)", empty);
  report("mock, 4 devices", mock4);
  report("mock, 1024 devices", mock1024);

  // The agent links toml++ itself (libbai's config reader), so there the plugin's dlopen
  // finds the library resident; here that is simulated by keeping it loaded.
  if (dlopen(kTomlLibrary, RTLD_NOW | RTLD_LOCAL) == nullptr) {
    std::printf("(%s not found: no figures with toml++ resident)\n", kTomlLibrary);
    return 0;
  }
  std::vector<Phases> resident;
  for (int i = 0; i < repeats; ++i) resident.push_back(runMock(mockPath, four));
  report("mock, 4, toml++ loaded", resident);
  return 0;
}
