// POSIX ACLs written as raw xattrs: the kernel's format, what getfacl reads back, and what
// a process running as the shared uid can really do.
#include "posix_acl.hpp"
#include "temp_dir.hpp"
#include "volume_catalog.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>

namespace bai::storage {
namespace {

namespace fs = std::filesystem;
namespace sp = storage_protocol;

constexpr std::uint32_t kOwner = 4242, kGuest = 5151;
const std::string kId = "fedcba9876543210fedcba9876543210";

std::uint32_t readLittleEndian(const std::string& bytes, std::size_t at, int size) {
  std::uint32_t value = 0;
  for (int i = size - 1; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  return value;
}

std::string run(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  std::array<char, 512> buffer{};
  while (pipe != nullptr && std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) out += buffer.data();
  if (pipe != nullptr) ::pclose(pipe);
  return out;
}

TEST(AclXattr, IsTheKernelsFormatSortedByTagThenId) {
  const std::string value = aclXattrValue(0700, true, {{5000, sp::Permission::ReadOnly}, {4000, sp::Permission::ReadWrite}});
  ASSERT_EQ(value.size(), 4u + 6 * 8);
  EXPECT_EQ(readLittleEndian(value, 0, 4), 2u);  // POSIX_ACL_XATTR_VERSION
  struct Entry { std::uint32_t tag, perm, id; };
  const std::array<Entry, 6> expected{{{0x01, 7, 0xffffffffu}, {0x02, 7, 4000}, {0x02, 5, 5000},
                                       {0x04, 0, 0xffffffffu}, {0x10, 7, 0xffffffffu}, {0x20, 0, 0xffffffffu}}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const std::size_t at = 4 + i * 8;
    EXPECT_EQ(readLittleEndian(value, at, 2), expected[i].tag) << "entry " << i;
    EXPECT_EQ(readLittleEndian(value, at + 2, 2), expected[i].perm) << "entry " << i;
    EXPECT_EQ(readLittleEndian(value, at + 4, 4), expected[i].id) << "entry " << i;
  }
  // A file's read-only share is r--, its read-write share rw-; an executable's gets x.
  EXPECT_EQ(readLittleEndian(aclXattrValue(0600, false, {{1, sp::Permission::ReadOnly}}), 4 + 8 + 2, 2), 4u);
  EXPECT_EQ(readLittleEndian(aclXattrValue(0600, false, {{1, sp::Permission::ReadWrite}}), 4 + 8 + 2, 2), 6u);
  EXPECT_EQ(readLittleEndian(aclXattrValue(0700, false, {{1, sp::Permission::ReadOnly}}), 4 + 8 + 2, 2), 5u);
}

class SharedFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "folders are chowned to their owners: run as root";
    ::chmod(dir_.path().c_str(), 0711);  // the guest must reach the volume
    root_ = dir_.path() / "volume";
    fs::create_directory(root_);
    ::chmod(root_.c_str(), 0711);
    auto catalog = VolumeCatalog::open({VolumeSpec{"default", "vfs", root_}}, {});
    ASSERT_TRUE(catalog.ok()) << catalog.error().message;
    catalog_ = std::move(*catalog);
    ASSERT_TRUE(catalog_->createFolder({"default", kId, kOwner, kOwner, std::nullopt}).ok());
    folder_ = root_ / "vfolders" / kId;
    fs::create_directories(folder_ / "sub");
    std::ofstream(folder_ / "sub" / "data") << "payload";
    ::chown((folder_ / "sub").c_str(), kOwner, kOwner);
    ::chown((folder_ / "sub" / "data").c_str(), kOwner, kOwner);
    ::chmod((folder_ / "sub").c_str(), 0700);
    ::chmod((folder_ / "sub" / "data").c_str(), 0600);
  }

  // What the guest can do, from a child running as the guest: bit 0 read the file, bit 1
  // write it, bit 2 create a file in sub/.
  int guestCan() {
    const pid_t child = ::fork();
    if (child == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setresgid(kGuest, kGuest, kGuest) != 0 || ::setresuid(kGuest, kGuest, kGuest) != 0) _exit(99);
      int can = 0;
      if (int fd = ::open((folder_ / "sub" / "data").c_str(), O_RDONLY); fd >= 0) can |= 1, ::close(fd);
      if (int fd = ::open((folder_ / "sub" / "data").c_str(), O_WRONLY); fd >= 0) can |= 2, ::close(fd);
      if (int fd = ::open((folder_ / "sub" / "new").c_str(), O_CREAT | O_WRONLY, 0644); fd >= 0) can |= 4, ::close(fd);
      _exit(can);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  test::TempDir dir_;
  fs::path root_, folder_;
  std::unique_ptr<VolumeCatalog> catalog_;
};

TEST_F(SharedFolderTest, NotSharedTheGuestCanDoNothing) { EXPECT_EQ(guestCan(), 0); }

TEST_F(SharedFolderTest, ReadOnlyShareReadsButNeverWrites) {
  ASSERT_TRUE(catalog_->setAccess("default", kId, kGuest, sp::Permission::ReadOnly).ok());
  EXPECT_EQ(guestCan(), 1);
  const std::string file = run("getfacl -cn " + (folder_ / "sub" / "data").string() + " 2>/dev/null");
  EXPECT_NE(file.find("user:5151:r--"), std::string::npos) << file;
  const std::string dir = run("getfacl -cn " + (folder_ / "sub").string() + " 2>/dev/null");
  EXPECT_NE(dir.find("user:5151:r-x"), std::string::npos) << dir;
  EXPECT_NE(dir.find("default:user:5151:r-x"), std::string::npos) << dir;
}

TEST_F(SharedFolderTest, ReadWriteShareWritesAndNewFilesInheritIt) {
  ASSERT_TRUE(catalog_->setAccess("default", kId, kGuest, sp::Permission::ReadWrite).ok());
  EXPECT_EQ(guestCan(), 7);
  // Made by the guest after the share, sub/new carries the folder's default ACL.
  const std::string inherited = run("getfacl -cn " + (folder_ / "sub" / "new").string() + " 2>/dev/null");
  EXPECT_NE(inherited.find("user:5151:rw"), std::string::npos) << inherited;
}

TEST_F(SharedFolderTest, RemovingTheShareTakesAccessBack) {
  ASSERT_TRUE(catalog_->setAccess("default", kId, kGuest, sp::Permission::ReadWrite).ok());
  ASSERT_TRUE(catalog_->setAccess("default", kId, kGuest, std::nullopt).ok());
  EXPECT_EQ(guestCan(), 0);
  const std::string file = run("getfacl -cn " + (folder_ / "sub" / "data").string() + " 2>/dev/null");
  EXPECT_EQ(file.find("5151"), std::string::npos) << file;
  EXPECT_EQ(fs::status(folder_ / "sub" / "data").permissions() & fs::perms::group_all, fs::perms::none);
}

TEST_F(SharedFolderTest, SharingNeverFollowsASymlinkOutOfTheFolder) {
  const auto outside = dir_.path() / "outside";
  std::ofstream(outside) << "secret";
  ::chmod(outside.c_str(), 0600);
  fs::create_symlink(outside, folder_ / "sub" / "escape");
  ASSERT_TRUE(catalog_->setAccess("default", kId, kGuest, sp::Permission::ReadWrite).ok());
  const std::string acl = run("getfacl -cn " + outside.string() + " 2>/dev/null");
  EXPECT_EQ(acl.find("5151"), std::string::npos) << acl;
}

}  // namespace
}  // namespace bai::storage
