// Whose sessions the agent runs (session_identity) and what isolates each one
// (session_isolation): the owner checks and the merge of the plugins' payloads, with a
// fake stat so no device node has to exist.
#include "agent/folder_mounts.hpp"
#include "agent/session_identity.hpp"
#include "agent/session_isolation.hpp"

#include <gtest/gtest.h>

#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>

namespace bai::core {
namespace {

using protocol::SessionOwner;

IdentityPolicy tenants() { return {{{200000, 299999}}, {{200000, 299999}}, false, true}; }

TEST(IdRanges, ParseRangesAndSingleIds) {
  auto ranges = parseIdRanges({"200000-299999", "1500"}, "runtime.session-uid-ranges");
  ASSERT_TRUE(ranges.ok()) << ranges.error().message;
  ASSERT_EQ(ranges->size(), 2u);
  EXPECT_TRUE((*ranges)[0].contains(200000));
  EXPECT_TRUE((*ranges)[0].contains(299999));
  EXPECT_FALSE((*ranges)[0].contains(300000));
  EXPECT_TRUE((*ranges)[1].contains(1500));
  EXPECT_FALSE((*ranges)[1].contains(1501));
}

TEST(IdRanges, BadRangesNameTheKeyAndTheText) {
  for (const char* bad : {"", "abc", "5-3", "1-", "-5", "1-4294967295", "100 - 200", "0-100", "0"}) {
    auto ranges = parseIdRanges({bad}, "runtime.session-uid-ranges");
    ASSERT_FALSE(ranges.ok()) << bad;
    EXPECT_NE(ranges.error().message.find("runtime.session-uid-ranges: '" + std::string(bad) + "'"), std::string::npos)
        << ranges.error().message;
  }
  EXPECT_FALSE(parseIdRanges({}, "k").ok()) << "no range at all would refuse every session";
}

TEST(CheckOwner, AnOwnerInsideTheRangesIsAccepted) {
  auto owner = checkOwner(SessionOwner{200001, 200001, "alice"}, tenants());
  ASSERT_TRUE(owner.ok()) << owner.error().detail;
  EXPECT_EQ(owner->uid, 200001u);
}

TEST(CheckOwner, RootAndIdsOutsideTheRangesAreRefused) {
  struct Case {
    SessionOwner owner;
    const char* reason;
  };
  for (const Case& c : {Case{{0, 200001, "x"}, "uid/gid 0 (root) is refused"},
                        Case{{200001, 0, "x"}, "uid/gid 0 (root) is refused"},
                        Case{{1000, 200001, "x"}, "uid 1000 is outside this agent's runtime.session-uid-ranges (200000-299999)"},
                        Case{{65534, 65534, "x"}, "uid 65534 is outside"},
                        Case{{200001, 100, "x"}, "gid 100 is outside this agent's runtime.session-gid-ranges"}}) {
    auto owner = checkOwner(c.owner, tenants());
    ASSERT_FALSE(owner.ok()) << c.owner.uid << ":" << c.owner.gid;
    EXPECT_EQ(owner.error().kind, AgentErrorKind::IdentityRefused);
    EXPECT_NE(owner.error().detail.find(c.reason), std::string::npos) << owner.error().detail;
  }
}

TEST(CheckOwner, RootOnlyWithTheOptionAndNothingWithoutAnOwnerOrWithoutRoot) {
  IdentityPolicy policy = tenants();
  policy.allowRootSessions = true;
  EXPECT_TRUE(checkOwner(SessionOwner{0, 0, "root"}, policy).ok());
  EXPECT_FALSE(checkOwner(SessionOwner{1000, 0, "x"}, policy).ok()) << "the option admits root, not every uid";

  auto none = checkOwner(std::nullopt, tenants());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().detail.find("names no owner"), std::string::npos);

  IdentityPolicy unprivileged = tenants();
  unprivileged.canSwitchUser = false;
  auto refused = checkOwner(SessionOwner{200001, 200001, "alice"}, unprivileged);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().detail.find("does not run as root"), std::string::npos);
}

// A fake file system of device nodes and plain paths.
struct FakeNodes {
  std::map<std::filesystem::path, struct stat> entries;

  void node(const std::string& path, char type, unsigned major, unsigned minor) {
    struct stat st {};
    st.st_mode = (type == 'c' ? S_IFCHR : S_IFBLK) | 0666;
    st.st_rdev = makedev(major, minor);
    entries[path] = st;
  }
  void dir(const std::string& path) {
    struct stat st {};
    st.st_mode = S_IFDIR | 0755;
    entries[path] = st;
  }
  StatFunction stat() const {
    return [this](const std::filesystem::path& path, struct stat& st) {
      auto it = entries.find(path);
      if (it == entries.end()) {
        errno = ENOENT;
        return -1;
      }
      st = it->second;
      return 0;
    };
  }
};

PluginPayload payload(const std::string& plugin, SessionResources resources) { return {plugin, std::move(resources)}; }

TEST(AssembleIsolation, DevicesBecomeNodesAndRulesBesideTheBaseSet) {
  FakeNodes fs;
  fs.node("/dev/nvidia1", 'c', 195, 1);
  fs.node("/dev/nvidiactl", 'c', 195, 255);
  SessionResources gpu;
  gpu.devices = {{"/dev/nvidia1", 'c', 195u, 1u, "rw"}, {"/dev/nvidiactl"}};
  SessionResources again;  // a second plugin naming the same control node
  again.devices = {{"/dev/nvidiactl"}};
  auto isolation = assembleIsolation({payload("cuda", gpu), payload("other", again)}, {}, true, fs.stat());
  ASSERT_TRUE(isolation.ok()) << isolation.error().message;
  ASSERT_EQ(isolation->sandbox.devices.size(), 2u) << "one node per path";
  EXPECT_EQ(isolation->sandbox.devices[1].major, 195u) << "numbers read from the node when the plugin gives none";
  EXPECT_EQ(isolation->sandbox.devices[1].minor, 255u);
  EXPECT_TRUE(isolation->limits.fenceDevices);
  const auto base = baseDeviceRules();
  ASSERT_EQ(isolation->limits.devices.size(), base.size() + 2);
  const DeviceRule& granted = isolation->limits.devices[base.size()];
  EXPECT_EQ(granted.type, 'c');
  EXPECT_EQ(granted.major, 195u);
  EXPECT_EQ(granted.minor, 1u);
  EXPECT_FALSE(isolation->sandbox.hostNodev);
}

TEST(AssembleIsolation, AContainerGetsAPluginsCdiNamesInsteadOfItsNodesAndMountsAndTheCpuQuota) {
  FakeNodes fs;
  fs.node("/dev/nvidia0", 'c', 195, 0);
  fs.node("/dev/acme0", 'c', 240, 0);
  fs.dir("/usr/lib/nvidia");
  fs.dir("/opt/acme");
  SessionResources gpu;  // a CDI spec names its GPU
  gpu.devices = {{"/dev/nvidia0"}};
  gpu.mounts = {{"/usr/lib/nvidia", "/usr/lib/nvidia", true}};
  gpu.cdiDevices = {"nvidia.com/gpu=GPU-0000"};
  SessionResources npu;  // no CDI: its node and mount go to the container as they are
  npu.devices = {{"/dev/acme0"}};
  npu.mounts = {{"/opt/acme", "/opt/acme", true}};
  npu.limits.cpuMillis = 500;
  auto isolation = assembleIsolation({payload("cuda", gpu), payload("acme", npu)}, {}, true, fs.stat());
  ASSERT_TRUE(isolation.ok()) << isolation.error().message;
  EXPECT_EQ(isolation->sandbox.devices.size(), 2u) << "a process session keeps every node";
  EXPECT_EQ(isolation->sandbox.mounts.size(), 2u);
  EXPECT_EQ(isolation->cdiDevices, std::vector<std::string>{"nvidia.com/gpu=GPU-0000"});
  ASSERT_EQ(isolation->containerDevices.size(), 1u);
  EXPECT_EQ(isolation->containerDevices[0].path, "/dev/acme0");
  ASSERT_EQ(isolation->containerMounts.size(), 1u);
  EXPECT_EQ(isolation->containerMounts[0].source, "/opt/acme");
  EXPECT_EQ(isolation->limits.cpuMillis, 500u);

  SessionResources quotaAgain;
  quotaAgain.limits.cpuMillis = 250;
  auto twice = assembleIsolation({payload("acme", npu), payload("other", quotaAgain)}, {}, true, fs.stat());
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.error().message.find("limits.cpu_quota is set by plugin acme already"), std::string::npos)
      << twice.error().message;
}

TEST(AssembleIsolation, WithoutACgroupFenceTheHostViewIsNodev) {
  auto isolation = assembleIsolation({}, {}, false, FakeNodes{}.stat());
  ASSERT_TRUE(isolation.ok());
  EXPECT_TRUE(isolation->sandbox.hostNodev);
}

TEST(AssembleIsolation, APayloadTheAgentCannotApplyNamesThePluginAndWhat) {
  FakeNodes fs;
  fs.node("/dev/nvidia0", 'c', 195, 0);
  fs.dir("/srv/models");
  fs.entries["/etc/passwd"] = {};
  fs.entries["/etc/passwd"].st_mode = S_IFREG | 0644;
  struct Case {
    SessionResources resources;
    const char* reason;
  };
  SessionResources missingNode, wrongNumbers, notANode, missingSource;
  missingNode.devices = {{"/dev/nvidia7"}};
  wrongNumbers.devices = {{"/dev/nvidia0", 'c', 195u, 3u, "rw"}};
  notANode.devices = {{"/etc/passwd"}};
  missingSource.mounts = {{"/srv/nothing", "/data", true}};
  for (const Case& c : {Case{missingNode, "plugin cuda: device /dev/nvidia7: No such file or directory"},
                        Case{wrongNumbers, "plugin cuda: device /dev/nvidia0 is c 195:0 here, not c 195:3"},
                        Case{notANode, "plugin cuda: device /etc/passwd: not a device node"},
                        Case{missingSource, "plugin cuda: mount source /srv/nothing: No such file or directory"}}) {
    auto isolation = assembleIsolation({payload("cuda", c.resources)}, {}, true, fs.stat());
    ASSERT_FALSE(isolation.ok()) << c.reason;
    EXPECT_NE(isolation.error().message.find(c.reason), std::string::npos) << isolation.error().message;
  }
}

TEST(AssembleIsolation, LimitsComeFromThePluginsNeverFromSlotNamesAndOneKeyHasOneOwner) {
  SessionResources cpu;
  cpu.limits.cpus = std::vector<int>{2, 3};
  cpu.limits.mems = std::vector<int>{1};
  cpu.limits.memoryBytes = std::uint64_t{4096} << 20;
  IsolationSettings settings;
  settings.pidsMax = 512;
  settings.hidden = {"/var/lib/bai/agent"};
  auto isolation = assembleIsolation({payload("cpu", cpu)}, settings, true, FakeNodes{}.stat());
  ASSERT_TRUE(isolation.ok());
  EXPECT_EQ(isolation->limits.cpus, (std::vector<int>{2, 3}));
  EXPECT_EQ(isolation->limits.mems, (std::vector<int>{1}));
  EXPECT_EQ(isolation->limits.memoryBytes, std::uint64_t{4096} << 20);
  EXPECT_EQ(isolation->limits.pidsMax, 512u);
  EXPECT_EQ(isolation->limits.swapBytes, 0u) << "no swap beyond the memory limit";
  EXPECT_EQ(isolation->sandbox.hidden, settings.hidden);

  SessionResources other;
  other.limits.cpus = std::vector<int>{0};
  auto conflict = assembleIsolation({payload("cpu", cpu), payload("acme", other)}, settings, true, FakeNodes{}.stat());
  ASSERT_FALSE(conflict.ok());
  EXPECT_NE(conflict.error().message.find("plugin acme: limits.cpuset is set by plugin cpu already"), std::string::npos)
      << conflict.error().message;
}

TEST(AssembleIsolation, EverySessionHasAMemoryLimitEvenWhenNoPluginGaveOne) {
  IsolationSettings settings;
  settings.defaultMemory = std::uint64_t{512} << 20;
  auto isolation = assembleIsolation({}, settings, true, FakeNodes{}.stat());
  ASSERT_TRUE(isolation.ok());
  EXPECT_EQ(isolation->limits.memoryBytes, std::uint64_t{512} << 20);
  EXPECT_EQ(isolation->limits.pidsMax, 4096u);
}

TEST(WorkDir, IsOwnedByTheSessionModeSevenHundredAndRemovedWhole) {
  char pattern[] = "/tmp/bai-workdir-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::filesystem::path work = std::filesystem::path(pattern) / "work";
  const uid_t uid = geteuid() == 0 ? 200007 : getuid();
  const gid_t gid = geteuid() == 0 ? 200007 : getgid();
  ASSERT_TRUE(makeWorkDir(work, uid, gid).ok());
  struct stat st {};
  ASSERT_EQ(::stat(work.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, uid);
  EXPECT_EQ(st.st_gid, gid);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_TRUE(makeWorkDir(work, uid, gid).ok()) << "a retried create keeps it";

  std::filesystem::create_directories(work / "a/b");
  std::filesystem::create_symlink("/etc", work / "link-to-etc");
  ASSERT_TRUE(removeWorkDir(work).ok());
  EXPECT_FALSE(std::filesystem::exists(work));
  EXPECT_TRUE(std::filesystem::exists("/etc/passwd")) << "a link is removed, never followed";
  std::filesystem::remove_all(pattern);

  const std::filesystem::path link = std::filesystem::path(pattern).string() + "-link";
  std::filesystem::create_symlink("/tmp", link);
  EXPECT_FALSE(makeWorkDir(link, uid, gid).ok()) << "never through a symlink";
  std::filesystem::remove(link);
}

TEST(IdentityFiles, TheOwnerIsAddedWhereTheHostDoesNotKnowItsIds) {
  char pattern[] = "/tmp/bai-identity-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::filesystem::path dir = pattern;
  std::filesystem::create_directories(dir / "etc");
  std::ofstream(dir / "etc/passwd") << "root:x:0:0:root:/root:/bin/bash\nalice:x:200002:200002::/home/alice:/bin/sh";
  std::ofstream(dir / "etc/group") << "root:x:0:\nshared:x:200001:\n";

  auto mounts = writeIdentityFiles(dir, SessionOwner{200001, 200001, "tenant-a"}, dir / "etc");
  ASSERT_TRUE(mounts.ok()) << mounts.error().message;
  ASSERT_EQ(mounts->size(), 2u);
  EXPECT_EQ((*mounts)[0].target, "/etc/passwd");
  EXPECT_EQ((*mounts)[1].target, "/etc/group");
  EXPECT_TRUE((*mounts)[0].readOnly && (*mounts)[1].readOnly);
  auto read = [](const std::filesystem::path& file) {
    std::ifstream in(file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(read((*mounts)[0].source),
            "root:x:0:0:root:/root:/bin/bash\nalice:x:200002:200002::/home/alice:/bin/sh\n"
            "tenant-a:x:200001:200001::/home/work:/bin/sh\n")
      << "the host's entries, then the owner's";
  EXPECT_EQ(read((*mounts)[1].source), "root:x:0:\nshared:x:200001:\n") << "gid 200001 has a group already";

  // A uid the host knows keeps the host's entry: one name per uid.
  auto known = writeIdentityFiles(dir, SessionOwner{200002, 200002, "tenant-b"}, dir / "etc");
  ASSERT_TRUE(known.ok());
  EXPECT_EQ(read((*known)[0].source).find("tenant-b"), std::string::npos);
  // A node without the files: the owner's entries alone.
  auto none = writeIdentityFiles(dir, SessionOwner{200003, 200003, "tenant-c"}, dir / "nothing");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(read((*none)[0].source), "tenant-c:x:200003:200003::/home/work:/bin/sh\n");
  std::filesystem::remove_all(dir);
}

// A folder the manager names is bound only from below the agent's mount roots, only as the
// real directory it is (no symlink detours), and read-only when asked.
class FolderMounts : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/bai-folder-mounts-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    base_ = pattern;
    std::filesystem::create_directories(base_ / "volume/vfolders/aa");
    std::filesystem::create_directories(base_ / "elsewhere");
    std::filesystem::create_directory_symlink(base_ / "elsewhere", base_ / "volume/vfolders/link");
    std::ofstream(base_ / "volume/vfolders/file") << "x";
  }
  void TearDown() override { std::filesystem::remove_all(base_); }

  protocol::FolderMount mount(const std::string& relative, bool readOnly = false) const {
    return {"aa", (base_ / relative).string(), "/home/work/data", readOnly};
  }
  std::string refusal(const std::vector<protocol::FolderMount>& mounts) const {
    auto binds = folderBinds(mounts, {base_ / "volume"});
    return binds ? "" : binds.error().message;
  }

  std::filesystem::path base_;
};

TEST_F(FolderMounts, AFolderBelowAMountRootIsBoundAtItsTarget) {
  auto binds = folderBinds({mount("volume/vfolders/aa", true)}, {base_ / "volume"});
  ASSERT_TRUE(binds.ok()) << binds.error().message;
  ASSERT_EQ(binds->size(), 1u);
  EXPECT_EQ((*binds)[0].source, base_ / "volume/vfolders/aa");
  EXPECT_EQ((*binds)[0].target, "/home/work/data");
  EXPECT_TRUE((*binds)[0].readOnly);
  EXPECT_TRUE(folderBinds({}, {}).ok());  // no folders need no roots
}

TEST_F(FolderMounts, EverythingElseIsRefusedWithTheReason) {
  EXPECT_NE(refusal({mount("elsewhere")}).find("not below any of this agent's [storage] mount-roots"), std::string::npos);
  EXPECT_NE(refusal({mount("volume/vfolders/link")}).find("symlink"), std::string::npos);
  EXPECT_NE(refusal({mount("volume/vfolders/file")}).find("not a directory"), std::string::npos);
  EXPECT_NE(refusal({mount("volume/vfolders/missing")}).find("No such file"), std::string::npos);
  EXPECT_NE(refusal({mount("volume/vfolders/aa/../../../elsewhere")}).find("mount-roots"), std::string::npos);
  // The root itself is not a folder: binding it would show every folder of the volume.
  EXPECT_NE(refusal({mount("volume")}).find("mount-roots"), std::string::npos);
  // A root that is a prefix of the name but not a parent directory.
  std::filesystem::create_directories(base_ / "volume2");
  EXPECT_NE(refusal({mount("volume2")}).find("mount-roots"), std::string::npos);
  auto noRoots = folderBinds({mount("volume/vfolders/aa")}, {});
  ASSERT_FALSE(noRoots.ok());
  EXPECT_NE(noRoots.error().message.find("mount-roots is empty"), std::string::npos);
}

}  // namespace
}  // namespace bai::core
