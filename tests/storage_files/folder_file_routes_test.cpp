// The manager API's files, mkdir, delete and move through FolderFileRoutes::handle.
#include "folder_file_routes.hpp"
#include "folder_fs.hpp"
#include "transfer_fixture.hpp"

#include <fcntl.h>

namespace bai::storage::files::testing {
namespace {

class FolderFileRoutesTest : public TransferTest {
 protected:
  http::Response post(const std::string& action, const std::string& body) {
    http::Request request;
    request.method = "POST";
    request.path = "/v1/folders/default/" + kFolderId + "/" + action;
    request.body = body;
    return routes.handle(request, folder, action);
  }
  http::Response files(const std::string& path, const std::string& recursive = "0") {
    http::Request request;
    request.method = "GET";
    request.path = "/v1/folders/default/" + kFolderId + "/files";
    request.query = {{"path", path}, {"recursive", recursive}};
    return routes.handle(request, folder, "files");
  }

  FolderFileRoutes routes{*catalog};
};

TEST_F(FolderFileRoutesTest, ListsFilesAndRefusesBadPaths) {
  writeFile(folder.dir / "a" / "b.txt", "abc");
  auto listed = files("", "1");
  ASSERT_EQ(listed.status, 200);
  auto entries = sp::entriesFromJson(listed.body);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ(typeOf(files("../x")), "invalid-path");
  EXPECT_EQ(typeOf(files("", "yes")), "invalid-request");
  EXPECT_EQ(typeOf(files("missing")), "no-such-file");
}

TEST_F(FolderFileRoutesTest, MkdirWithAndWithoutParents) {
  EXPECT_EQ(post("mkdir", R"({"path":"one"})").status, 201);
  EXPECT_TRUE(std::filesystem::is_directory(folder.dir / "one"));
  EXPECT_EQ(typeOf(post("mkdir", R"({"path":"one"})")), "exists");
  EXPECT_EQ(post("mkdir", R"({"path":"one","parents":true})").status, 201) << "an existing directory is fine with parents";
  EXPECT_EQ(typeOf(post("mkdir", R"({"path":"x/y"})")), "no-such-file") << "no parents without parents: true";
  EXPECT_FALSE(std::filesystem::exists(folder.dir / "x"));
  EXPECT_EQ(post("mkdir", R"({"path":"x/y","parents":true})").status, 201);
  EXPECT_TRUE(std::filesystem::is_directory(folder.dir / "x" / "y"));
  EXPECT_EQ(typeOf(post("mkdir", R"({"path":"/abs"})")), "invalid-path");
  EXPECT_EQ(typeOf(post("mkdir", R"({"path":7})")), "invalid-request");
  EXPECT_EQ(typeOf(post("mkdir", R"({"path":"p","parents":"yes"})")), "invalid-request");
  EXPECT_EQ(typeOf(post("mkdir", "not json")), "invalid-request");
  std::filesystem::create_directory_symlink("/tmp", folder.dir / "tmp-link");
  EXPECT_EQ(typeOf(post("mkdir", R"({"path":"tmp-link/bai-escape","parents":true})")), "path-escapes");
  EXPECT_FALSE(std::filesystem::exists("/tmp/bai-escape"));
}

TEST_F(FolderFileRoutesTest, DeleteRefundsTheBytesAndRemovesTreesOnlyWhenAsked) {
  writeFile(folder.dir / "tree" / "a", std::string(10, 'a'));
  writeFile(folder.dir / "tree" / "sub" / "b", std::string(20, 'b'));
  writeFile(folder.dir / "single", std::string(5, 's'));
  std::filesystem::create_directory_symlink("/etc", folder.dir / "tree" / "etc-link");
  EXPECT_EQ(catalog->used(folder), 35u);
  EXPECT_EQ(post("delete", R"({"path":"single"})").status, 204);
  EXPECT_EQ(catalog->used(folder), 30u);
  EXPECT_EQ(typeOf(post("delete", R"({"path":"tree"})")), "exists") << "not empty, not recursive";
  EXPECT_EQ(post("delete", R"({"path":"tree","recursive":true})").status, 204);
  EXPECT_FALSE(std::filesystem::exists(folder.dir / "tree"));
  EXPECT_TRUE(std::filesystem::exists("/etc/passwd")) << "the symlink was removed, not followed";
  EXPECT_EQ(catalog->used(folder), 0u);
  EXPECT_EQ(typeOf(post("delete", R"({"path":"tree"})")), "no-such-file");
  EXPECT_EQ(typeOf(post("delete", R"({"path":""})")), "invalid-path");
  EXPECT_TRUE(std::filesystem::is_directory(folder.dir));
}

TEST_F(FolderFileRoutesTest, MoveRenamesWithinTheFolderAndNeverReplaces) {
  writeFile(folder.dir / "a", "A");
  writeFile(folder.dir / "b", "B");
  std::filesystem::create_directory(folder.dir / "dir");
  EXPECT_EQ(post("move", R"({"from":"a","to":"dir/a2"})").status, 204);
  EXPECT_EQ(readFile(folder.dir / "dir" / "a2"), "A");
  EXPECT_EQ(typeOf(post("move", R"({"from":"b","to":"dir/a2"})")), "exists");
  EXPECT_EQ(readFile(folder.dir / "dir" / "a2"), "A");
  EXPECT_EQ(typeOf(post("move", R"({"from":"dir","to":"dir/inner"})")), "invalid-request");
  EXPECT_EQ(typeOf(post("move", R"({"from":"missing","to":"c"})")), "no-such-file");
  EXPECT_EQ(typeOf(post("move", R"({"from":"b","to":"../b"})")), "invalid-path");
  std::filesystem::create_directory_symlink("../" + kOtherFolderId, folder.dir / "sibling");
  EXPECT_EQ(typeOf(post("move", R"({"from":"b","to":"sibling/b"})")), "path-escapes");
  EXPECT_FALSE(std::filesystem::exists(other.dir / "b"));
  EXPECT_EQ(typeOf(post("move", R"({"from":"b"})")), "invalid-request");
}

TEST_F(FolderFileRoutesTest, AListingStopsAtTheEntryCap) {
  // kMaxListedEntries + 1 entries in a real directory, cheaply: empty files.
  std::filesystem::create_directory(folder.dir / "many");
  const int dir = ::open((folder.dir / "many").c_str(), O_PATH | O_DIRECTORY);
  ASSERT_GE(dir, 0);
  for (std::size_t i = 0; i <= kMaxListedEntries; ++i) {
    const int fd = ::openat(dir, std::to_string(i).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  ::close(dir);
  auto listed = files("many");
  EXPECT_EQ(listed.status, 413);
  EXPECT_EQ(typeOf(listed), "too-many-entries");
  EXPECT_EQ(files("many/7").status, 200) << "one file of it lists";
}

}  // namespace
}  // namespace bai::storage::files::testing
