// The folder catalog on a vfs volume in a temp dir: layout, create (idempotent, another
// owner refused), delete, quotas, charges racing for the last bytes, adoption.
#include "temp_dir.hpp"
#include "tree_walk.hpp"
#include "volume_catalog.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

namespace bai::storage {
namespace {

namespace fs = std::filesystem;
namespace sp = storage_protocol;

constexpr std::uint32_t kOwner = 4242;
const std::string kId = "0123456789abcdef0123456789abcdef";

struct stat lstatOf(const fs::path& path) {
  struct stat status {};
  EXPECT_EQ(::lstat(path.c_str(), &status), 0) << path;
  return status;
}

class VolumeCatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "folders are chowned to their owners: run as root";
    root_ = dir_.path() / "volume";
    fs::create_directory(root_);
    auto catalog = VolumeCatalog::open({VolumeSpec{"default", "vfs", root_}}, {});
    ASSERT_TRUE(catalog.ok()) << catalog.error().message;
    catalog_ = std::move(*catalog);
  }

  sp::CreateFolderRequest request(std::optional<std::uint64_t> quota = std::nullopt) {
    return sp::CreateFolderRequest{"default", kId, kOwner, kOwner, quota};
  }

  test::TempDir dir_;
  fs::path root_;
  std::unique_ptr<VolumeCatalog> catalog_;
};

TEST_F(VolumeCatalogTest, StartMakesTheLayout) {
  EXPECT_EQ(lstatOf(root_ / "vfolders").st_mode & 07777, 0711u);
  EXPECT_EQ(lstatOf(root_ / ".bai").st_mode & 07777, 0700u);
  auto volumes = catalog_->volumes();
  ASSERT_EQ(volumes.size(), 1u);
  EXPECT_EQ(volumes[0].name, "default");
  EXPECT_EQ(volumes[0].backend, "vfs");
  EXPECT_FALSE(volumes[0].kernelQuota);
  EXPECT_GT(volumes[0].totalBytes, 0u);
}

TEST_F(VolumeCatalogTest, RefusesARootWritableByOthers) {
  const auto open = dir_.path() / "open";
  fs::create_directory(open);
  ::chmod(open.c_str(), 0777);
  auto catalog = VolumeCatalog::open({VolumeSpec{"open", "vfs", open}}, {});
  ASSERT_FALSE(catalog.ok());
  EXPECT_NE(catalog.error().message.find("writable by others"), std::string::npos) << catalog.error().message;
}

TEST_F(VolumeCatalogTest, CreateMakesTheOwnersPrivateDirectoryAndMetadata) {
  auto created = catalog_->createFolder(request(1000));
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_TRUE(created->created);
  const auto dir = root_ / "vfolders" / kId;
  EXPECT_EQ(created->info.hostPath, dir.string());
  EXPECT_EQ(created->info.quotaBytes, 1000u);
  const auto status = lstatOf(dir);
  EXPECT_TRUE(S_ISDIR(status.st_mode));
  EXPECT_EQ(status.st_uid, kOwner);
  EXPECT_EQ(status.st_gid, kOwner);
  EXPECT_EQ(status.st_mode & 07777, 0700u);
  EXPECT_TRUE(fs::is_regular_file(root_ / ".bai" / "folders" / (kId + ".json")));
}

TEST_F(VolumeCatalogTest, CreateIsIdempotentForTheOwnerAndRefusedForAnother) {
  ASSERT_TRUE(catalog_->createFolder(request()).ok());
  std::ofstream(root_ / "vfolders" / kId / "kept") << "abc";
  auto again = catalog_->createFolder(request());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->info.usedBytes, 3u);  // the folder as it is, not made anew
  auto other = catalog_->createFolder(sp::CreateFolderRequest{"default", kId, kOwner + 1, kOwner + 1, std::nullopt});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, ErrorCode::Conflict);
}

TEST_F(VolumeCatalogTest, UnknownVolumeOrFolderIsNotFound) {
  auto noVolume = catalog_->createFolder(sp::CreateFolderRequest{"other", kId, kOwner, kOwner, std::nullopt});
  ASSERT_FALSE(noVolume.ok());
  EXPECT_EQ(noVolume.error().code, ErrorCode::NotFound);
  EXPECT_FALSE(catalog_->hasVolume("other"));
  auto noFolder = catalog_->info("default", kId);
  ASSERT_FALSE(noFolder.ok());
  EXPECT_EQ(noFolder.error().code, ErrorCode::NotFound);
  auto badId = catalog_->info("default", "../../etc");
  ASSERT_FALSE(badId.ok());
  EXPECT_EQ(badId.error().code, ErrorCode::InvalidArgument);
}

TEST_F(VolumeCatalogTest, InfoMeasuresUsageNow) {
  ASSERT_TRUE(catalog_->createFolder(request()).ok());
  const auto dir = root_ / "vfolders" / kId;
  fs::create_directory(dir / "sub");
  std::ofstream(dir / "sub" / "a") << std::string(1234, 'a');
  std::ofstream(dir / "b") << std::string(66, 'b');
  fs::create_symlink("/etc/passwd", dir / "escape");
  auto info = catalog_->info("default", kId);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->usedBytes, 1300u);
  EXPECT_EQ(info->fileCount, 2u);
}

TEST_F(VolumeCatalogTest, DeleteRemovesTreeStagingAndMetadataWithoutFollowingLinks) {
  ASSERT_TRUE(catalog_->createFolder(request()).ok());
  const auto dir = root_ / "vfolders" / kId;
  const auto outside = dir_.path() / "outside";
  fs::create_directory(outside);
  std::ofstream(outside / "precious") << "keep me";
  fs::create_directories(dir / "a" / "b");
  std::ofstream(dir / "a" / "b" / "f") << "x";
  fs::create_directory_symlink(outside, dir / "a" / "link");
  fs::create_directories(root_ / ".bai" / "staging" / kId / "part");
  ASSERT_TRUE(catalog_->deleteFolder("default", kId).ok());
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir)));
  EXPECT_FALSE(fs::exists(root_ / ".bai" / "staging" / kId));
  EXPECT_FALSE(fs::exists(root_ / ".bai" / "folders" / (kId + ".json")));
  EXPECT_TRUE(fs::exists(outside / "precious"));
  EXPECT_EQ(catalog_->info("default", kId).error().code, ErrorCode::NotFound);
  // Deleted, the id can be made again.
  EXPECT_TRUE(catalog_->createFolder(request()).value().created);
}

TEST_F(VolumeCatalogTest, QuotaIsSetAndClearedAndPersists) {
  ASSERT_TRUE(catalog_->createFolder(request()).ok());
  auto set = catalog_->setQuota("default", kId, 5000);
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->quotaBytes, 5000u);
  // A second catalog (a restarted proxy) reads it from the metadata.
  auto restarted = VolumeCatalog::open({VolumeSpec{"default", "vfs", root_}}, {});
  ASSERT_TRUE(restarted.ok());
  EXPECT_EQ((*restarted)->info("default", kId)->quotaBytes, 5000u);
  auto cleared = catalog_->setQuota("default", kId, std::nullopt);
  ASSERT_TRUE(cleared.ok());
  EXPECT_FALSE(cleared->quotaBytes.has_value());
}

TEST_F(VolumeCatalogTest, ChargesRacingForTheLastBytesChargeExactlyWhatFits) {
  ASSERT_TRUE(catalog_->createFolder(request(1000)).ok());
  const auto dir = root_ / "vfolders" / kId;
  std::ofstream(dir / "existing") << std::string(100, 'e');  // measured at the first charge
  auto ref = catalog_->folder("default", kId);
  ASSERT_TRUE(ref.ok());
  std::atomic<int> granted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (catalog_->charge(*ref, 7).ok()) {
          ++granted;
        } else {
          ++refused;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(granted.load(), 900 / 7);  // 128 charges of 7 fit in the 900 bytes left
  EXPECT_EQ(refused.load(), 400 - 900 / 7);
  // 4 bytes remain: 5 are refused, 4 fit; a refund makes room again.
  auto over = catalog_->charge(*ref, 5);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::OutOfRange);
  EXPECT_NE(over.error().message.find("quota 1000"), std::string::npos) << over.error().message;
  catalog_->refund(*ref, 7);
  EXPECT_TRUE(catalog_->charge(*ref, 11).ok());
  EXPECT_FALSE(catalog_->charge(*ref, 1).ok());
}

TEST_F(VolumeCatalogTest, ChargeCountsPartialUploads) {
  ASSERT_TRUE(catalog_->createFolder(request(100)).ok());
  auto ref = catalog_->folder("default", kId);
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->stagingDir, root_ / ".bai" / "staging" / kId);
  std::ofstream(ref->stagingDir / "upload-1") << std::string(60, 'p');
  EXPECT_FALSE(catalog_->charge(*ref, 41).ok());
  EXPECT_TRUE(catalog_->charge(*ref, 40).ok());
}

TEST_F(VolumeCatalogTest, AdoptGivesTheOwnerAndTheSharesAccess) {
  ASSERT_TRUE(catalog_->createFolder(request()).ok());
  ASSERT_TRUE(catalog_->setAccess("default", kId, 5151, sp::Permission::ReadOnly).ok());
  auto ref = catalog_->folder("default", kId);
  ASSERT_TRUE(ref.ok());
  const auto file = ref->stagingDir / "new";
  UniqueFd fd(::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(catalog_->adopt(*ref, fd.get(), false).ok());
  const auto status = lstatOf(file);
  EXPECT_EQ(status.st_uid, kOwner);
  EXPECT_EQ(status.st_mode & 0700, 0600u);
  EXPECT_EQ(status.st_mode & 0007, 0u);
  EXPECT_GT(::getxattr(file.c_str(), "system.posix_acl_access", nullptr, 0), 0);
}

TEST_F(VolumeCatalogTest, AccessOfRootIsRefused) {
  ASSERT_TRUE(catalog_->createFolder(request()).ok());
  auto refused = catalog_->setAccess("default", kId, 0, sp::Permission::ReadWrite);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::InvalidArgument);
}

}  // namespace
}  // namespace bai::storage
