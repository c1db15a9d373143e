// storage-proxy.toml: what loads, and that each mistake is refused naming the file, the
// key and the reason.
#include "proxy_config.hpp"
#include "secret_file.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>

namespace bai::storage {
namespace {

class ProxyConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    volume_ = dir_.path() / "volume";
    std::filesystem::create_directory(volume_);
  }

  Result<ProxySettings> load(const std::string& toml) {
    const auto file = dir_.path() / "proxy.toml";
    std::ofstream(file) << toml;
    auto config = proxyConfigSchema().load(file.string());
    if (!config) return Failure{config.error()};
    return proxySettings(*config, file.string());
  }

  std::string volumeTable(const std::string& backend = "vfs", const std::string& path = "") {
    return "[volumes.default]\nbackend = \"" + backend + "\"\npath = \"" + (path.empty() ? volume_.string() : path) + "\"\n";
  }

  test::TempDir dir_;
  std::filesystem::path volume_;
  const std::string api_ = "[api]\ntoken-file = \"/etc/bai/storage-token\"\n";
};

TEST_F(ProxyConfigTest, LoadsVolumesAndDefaults) {
  auto settings = load(api_ + "max-chunk = \"8m\"\n" + volumeTable() + "[volumes.scratch]\npath = \"" + volume_.string() + "\"\n");
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  EXPECT_EQ(settings->managerListen, "127.0.0.1:6021");
  EXPECT_EQ(settings->clientListen, "127.0.0.1:6022");
  EXPECT_EQ(settings->maxChunkBytes, 8u << 20);
  EXPECT_EQ(settings->uploadExpiry, std::chrono::seconds(86400));
  EXPECT_EQ(settings->tokenFile, "/etc/bai/storage-token");
  ASSERT_EQ(settings->volumes.size(), 2u);
  EXPECT_EQ(settings->volumes[0].name, "default");
  EXPECT_EQ(settings->volumes[0].path, volume_);
  EXPECT_EQ(settings->volumes[1].name, "scratch");
  EXPECT_EQ(settings->volumes[1].backend, "vfs");  // the default back end
}

TEST_F(ProxyConfigTest, RefusesAnUnknownKey) {
  auto settings = load(api_ + "listen = \"0.0.0.0:1\"\n" + volumeTable());
  ASSERT_FALSE(settings.ok());
  EXPECT_NE(settings.error().message.find("api.listen"), std::string::npos) << settings.error().message;
}

TEST_F(ProxyConfigTest, RefusesAnUnknownKeyOfAVolume) {
  auto settings = load(api_ + volumeTable() + "quota = \"1g\"\n");
  ASSERT_FALSE(settings.ok());
  EXPECT_NE(settings.error().message.find("volumes.default.quota: unknown key"), std::string::npos) << settings.error().message;
  EXPECT_NE(settings.error().message.find("proxy.toml"), std::string::npos) << settings.error().message;
}

TEST_F(ProxyConfigTest, RefusesABadBackend) {
  auto settings = load(api_ + volumeTable("zfs"));
  ASSERT_FALSE(settings.ok());
  EXPECT_NE(settings.error().message.find("volumes.default.backend: 'zfs' is not vfs or xfs"), std::string::npos)
      << settings.error().message;
}

TEST_F(ProxyConfigTest, RefusesARelativeOrMissingPath) {
  auto relative = load(api_ + volumeTable("vfs", "srv/volume"));
  ASSERT_FALSE(relative.ok());
  EXPECT_NE(relative.error().message.find("volumes.default.path: 'srv/volume' is not an absolute path"), std::string::npos)
      << relative.error().message;
  auto missing = load(api_ + volumeTable("vfs", (volume_ / "absent").string()));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("is not an existing directory"), std::string::npos) << missing.error().message;
}

TEST_F(ProxyConfigTest, RefusesABadVolumeName) {
  auto settings = load(api_ + "[volumes.Big]\npath = \"" + volume_.string() + "\"\n");
  ASSERT_FALSE(settings.ok());
  EXPECT_NE(settings.error().message.find("'Big' is not a volume name"), std::string::npos) << settings.error().message;
}

TEST_F(ProxyConfigTest, RequiresATokenFileAndAVolume) {
  auto noToken = load(volumeTable());
  ASSERT_FALSE(noToken.ok());
  EXPECT_NE(noToken.error().message.find("api.token-file: required"), std::string::npos) << noToken.error().message;
  auto noVolume = load(api_);
  ASSERT_FALSE(noVolume.ok());
  EXPECT_NE(noVolume.error().message.find("no [volumes.NAME] table"), std::string::npos) << noVolume.error().message;
}

TEST_F(ProxyConfigTest, RefusesAChunkOutOfRange) {
  auto settings = load(api_ + "max-chunk = \"2g\"\n" + volumeTable());
  ASSERT_FALSE(settings.ok());
  EXPECT_NE(settings.error().message.find("api.max-chunk must be 1k to 1g"), std::string::npos) << settings.error().message;
}

// The daemon reads its token with readClusterToken: a token others may read is refused.
TEST_F(ProxyConfigTest, TokenFileReadableByOthersIsRefused) {
  const auto token = dir_.path() / "token";
  ASSERT_TRUE(writeSecretFile(token, "s3cret\n").ok());
  ASSERT_TRUE(readClusterToken(token).ok());
  ::chmod(token.c_str(), 0644);
  auto read = readClusterToken(token);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().message.find("s3cret"), std::string::npos);  // never the secret in an error
}

TEST_F(ProxyConfigTest, SampleConfigLoads) {
  std::ifstream in(std::string(BAI_SOURCE_ROOT) + "/configs/storage-proxy.sample.toml");
  std::string sample((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(sample.empty());
  // The sample's volume lives on a server; here it is a temp dir.
  const std::string samplePath = "/srv/bai/volumes/default";
  sample.replace(sample.find(samplePath), samplePath.size(), volume_.string());
  auto settings = load(sample);
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  ASSERT_EQ(settings->volumes.size(), 1u);
  EXPECT_EQ(settings->volumes[0].backend, "vfs");
}

}  // namespace
}  // namespace bai::storage
