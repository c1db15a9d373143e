// The back ends: vfs usage is exact (regular files' sizes, links neither followed nor
// counted twice, sparse files by size) and xfs refuses what cannot hold its quotas.
#include "temp_dir.hpp"
#include "tree_walk.hpp"
#include "volume_backend.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

namespace bai::storage {
namespace {

namespace fs = std::filesystem;

void writeBytes(const fs::path& file, std::size_t bytes) { std::ofstream(file, std::ios::binary) << std::string(bytes, 'x'); }

TEST(VfsUsage, AddsUpRegularFilesInNestedDirectories) {
  test::TempDir dir;
  writeBytes(dir.path() / "a", 10);
  fs::create_directories(dir.path() / "d1" / "d2");
  writeBytes(dir.path() / "d1" / "b", 200);
  writeBytes(dir.path() / "d1" / "d2" / "c", 3000);
  writeBytes(dir.path() / "d1" / "d2" / "empty", 0);
  auto usage = measureByWalking(dir.path());
  ASSERT_TRUE(usage.ok()) << usage.error().message;
  EXPECT_EQ(usage->bytes, 3210u);
  EXPECT_EQ(usage->files, 4u);
}

TEST(VfsUsage, NeverFollowsOrCountsSymlinksAndCountsHardLinksOnce) {
  test::TempDir outside, dir;
  writeBytes(outside.path() / "big", 100000);
  writeBytes(dir.path() / "own", 7);
  fs::create_symlink(outside.path() / "big", dir.path() / "link-to-file");
  fs::create_directory_symlink(outside.path(), dir.path() / "link-to-dir");
  fs::create_symlink(dir.path() / "own", dir.path() / "link-inside");
  fs::create_hard_link(dir.path() / "own", dir.path() / "hard");
  auto usage = measureByWalking(dir.path());
  ASSERT_TRUE(usage.ok()) << usage.error().message;
  EXPECT_EQ(usage->bytes, 7u);
  EXPECT_EQ(usage->files, 1u);
}

TEST(VfsUsage, CountsASparseFileBySize) {
  test::TempDir dir;
  const auto file = dir.path() / "sparse";
  std::ofstream(file).close();
  fs::resize_file(file, 1ull << 30);  // 1 GiB of holes
  auto usage = measureByWalking(dir.path());
  ASSERT_TRUE(usage.ok()) << usage.error().message;
  EXPECT_EQ(usage->bytes, 1ull << 30);
}

TEST(VfsUsage, RefusesAPathThatIsASymlink) {
  test::TempDir dir;
  fs::create_directory(dir.path() / "real");
  fs::create_directory_symlink(dir.path() / "real", dir.path() / "link");
  EXPECT_FALSE(measureByWalking(dir.path() / "link").ok());
}

// Deeper than the walk descends (512 levels): removal moves deep directories up instead of
// recursing, so a tree of any depth goes, with bounded stack and descriptors.
TEST(TreeRemoval, RemovesATreeDeeperThanTheWalkDescends) {
  test::TempDir dir;
  fs::create_directory(dir.path() / "top");
  UniqueFd level(::open((dir.path() / "top").c_str(), O_RDONLY | O_DIRECTORY));
  for (int depth = 0; depth < 1200; ++depth) {
    ASSERT_EQ(::mkdirat(level.get(), "d", 0700), 0);
    level = UniqueFd(::openat(level.get(), "d", O_RDONLY | O_DIRECTORY));
    ASSERT_TRUE(level.valid());
  }
  ASSERT_EQ(::mkdirat(level.get(), ".bai-removing-0", 0700), 0);  // a name the removal uses, taken
  EXPECT_FALSE(measureByWalking(dir.path() / "top").ok());  // too deep to measure: refused, not crashed
  ASSERT_TRUE(removeTreeAt(AT_FDCWD, (dir.path() / "top").c_str()).ok());
  EXPECT_FALSE(fs::exists(dir.path() / "top"));
}

TEST(XfsBackend, RefusesAPathNotOnXfs) {
  test::TempDir dir;
  auto backend = makeVolumeBackend("xfs");
  ASSERT_TRUE(backend.ok());
  auto checked = (*backend)->check(dir.path());
  ASSERT_FALSE(checked.ok());
  EXPECT_NE(checked.error().message.find("is not on an XFS file system"), std::string::npos) << checked.error().message;
}

TEST(XfsBackend, RefusesXfsMountedWithoutProjectQuotas) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a loop device needs root";
  if (std::system("command -v mkfs.xfs >/dev/null 2>&1") != 0) GTEST_SKIP() << "mkfs.xfs not installed (xfsprogs)";
  test::TempDir dir;
  const auto image = dir.path() / "xfs.img";
  const auto mountPoint = dir.path() / "mnt";
  fs::create_directory(mountPoint);
  std::ofstream(image).close();
  fs::resize_file(image, 320ull << 20);  // mkfs.xfs wants 300 MiB at least; sparse
  ASSERT_EQ(std::system(("mkfs.xfs -q " + image.string()).c_str()), 0);
  if (std::system(("mount -o loop " + image.string() + " " + mountPoint.string() + " 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "mount -o loop is not possible here (no loop devices or no privilege)";
  }
  auto backend = makeVolumeBackend("xfs");
  ASSERT_TRUE(backend.ok());
  auto checked = (*backend)->check(mountPoint);
  umount2(mountPoint.c_str(), MNT_DETACH);
  ASSERT_FALSE(checked.ok());
  EXPECT_NE(checked.error().message.find("mount it with -o prjquota"), std::string::npos) << checked.error().message;
}

TEST(VolumeBackends, UnknownBackendIsRefusedByName) {
  auto backend = makeVolumeBackend("ceph");
  ASSERT_FALSE(backend.ok());
  EXPECT_NE(backend.error().message.find("'ceph'"), std::string::npos);
  ASSERT_TRUE(makeVolumeBackend("vfs").ok());
  EXPECT_FALSE((*makeVolumeBackend("vfs"))->kernelQuota());
}

}  // namespace
}  // namespace bai::storage
