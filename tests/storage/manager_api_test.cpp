// The manager API's routing without a listener: the Bearer check, and the file operations
// handed to the files routes with the folder found.
#include "manager_api.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

namespace bai::storage {
namespace {

namespace fs = std::filesystem;
const std::string kToken = "t0ken";
const std::string kId = "abcdefabcdefabcdefabcdefabcdefab";

class ManagerApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "folders are chowned to their owners: run as root";
    fs::create_directory(dir_.path() / "volume");
    auto catalog = VolumeCatalog::open({VolumeSpec{"default", "vfs", dir_.path() / "volume"}}, {});
    ASSERT_TRUE(catalog.ok()) << catalog.error().message;
    catalog_ = std::move(*catalog);
    ASSERT_TRUE(catalog_->createFolder({"default", kId, 4242, 4242, std::nullopt}).ok());
    api_ = std::make_unique<ManagerApi>(*catalog_, kToken,
                                        [this](const http::Request&, const FolderRef& folder, std::string_view action) {
                                          routed_.push_back(std::string(action) + " " + folder.folderId);
                                          http::Response response;
                                          response.status = 299;
                                          return response;
                                        },
                                        LogSink{});
  }

  http::Response call(const std::string& method, const std::string& path, const std::string& token = kToken) {
    http::Request request;
    request.method = method;
    request.path = path;
    request.target = path;
    if (!token.empty()) request.headers["authorization"] = "Bearer " + token;
    return api_->handle(request);
  }

  test::TempDir dir_;
  std::unique_ptr<VolumeCatalog> catalog_;
  std::unique_ptr<ManagerApi> api_;
  std::vector<std::string> routed_;
};

TEST_F(ManagerApiTest, FileOperationsGoToTheFilesRoutesWithTheFolder) {
  const std::string folder = "/v1/folders/default/" + kId;
  EXPECT_EQ(call("GET", folder + "/files").status, 299);
  EXPECT_EQ(call("POST", folder + "/mkdir").status, 299);
  EXPECT_EQ(call("POST", folder + "/delete").status, 299);
  EXPECT_EQ(call("POST", folder + "/move").status, 299);
  EXPECT_EQ(routed_, (std::vector<std::string>{"files " + kId, "mkdir " + kId, "delete " + kId, "move " + kId}));
  EXPECT_EQ(call("GET", folder + "/mkdir").status, 404);  // wrong method: not routed
  EXPECT_EQ(call("POST", folder + "/files", "wrong").status, 401);
  EXPECT_EQ(routed_.size(), 4u);
}

TEST_F(ManagerApiTest, UnknownFolderOrVolumeNeverReachesTheFilesRoutes) {
  auto noFolder = call("GET", "/v1/folders/default/ffffffffffffffffffffffffffffffff/files");
  EXPECT_EQ(noFolder.status, 404);
  EXPECT_EQ(nlohmann::json::parse(noFolder.body)["type"], "no-such-folder");
  auto noVolume = call("GET", "/v1/folders/other/" + kId + "/files");
  EXPECT_EQ(noVolume.status, 404);
  EXPECT_EQ(nlohmann::json::parse(noVolume.body)["type"], "no-such-volume");
  auto badId = call("GET", "/v1/folders/default/..%2F..%2Fetc/files");
  EXPECT_EQ(badId.status, 400);
  EXPECT_TRUE(routed_.empty());
}

TEST_F(ManagerApiTest, EveryRouteNeedsTheToken) {
  EXPECT_EQ(call("GET", "/v1/volumes", "").status, 401);
  EXPECT_EQ(call("GET", "/v1/folders/default/" + kId, "t0ke").status, 401);
  EXPECT_EQ(call("DELETE", "/v1/folders/default/" + kId, "").status, 401);
  EXPECT_TRUE(fs::exists(dir_.path() / "volume" / "vfolders" / kId));
  EXPECT_EQ(call("GET", "/v1/nothing").status, 404);
}

}  // namespace
}  // namespace bai::storage
