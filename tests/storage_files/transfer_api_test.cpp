// The client API's path confinement, grants and downloads, through TransferApi::handle.
#include "transfer_fixture.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <chrono>
#include <cstring>
#include <future>

namespace bai::storage::files::testing {
namespace {

TEST_F(TransferTest, PathsThatNormalisationRefusesAreInvalidForEveryOperation) {
  const std::vector<std::string> attacks = {"../x", "a/../../x", "/etc/passwd", std::string("a\0b", 3), "a\x01" "b", "a\nb",
                                            std::string(256, 'n'), std::string(4097, 'p'), "a//b", "\xff\xfe"};
  for (const auto& path : attacks) {
    EXPECT_EQ(download(path).status, 400) << path;
    EXPECT_EQ(typeOf(download(path)), "invalid-path") << path;
    EXPECT_EQ(typeOf(start(path, 3)), "invalid-path") << path;
    EXPECT_EQ(typeOf(put(path, "abc")), "invalid-path") << path;
    EXPECT_EQ(typeOf(call("GET", "/v1/list", path, downloadGrant())), "invalid-path") << path;
  }
  EXPECT_EQ(stagedUploads(), 0u);
  // The longest name and path that are allowed work.
  const std::string longest = std::string(255, 'n');
  EXPECT_EQ(put(longest, "x").status, 201);
  EXPECT_EQ(bodyOf(download(longest)), "x");
}

TEST_F(TransferTest, ASymlinkToEtcIsRefusedForDownloadAndUploadAndEtcIsUntouched) {
  std::filesystem::create_directory_symlink("/etc", folder.dir / "out");
  std::filesystem::create_symlink("/etc/passwd", folder.dir / "pw");
  const std::string passwd = readFile("/etc/passwd");
  EXPECT_EQ(typeOf(download("out/passwd")), "path-escapes");
  EXPECT_EQ(download("out/passwd").status, 403);
  EXPECT_EQ(typeOf(download("pw")), "path-escapes");
  EXPECT_EQ(typeOf(start("out/bai-planted", 3)), "path-escapes");
  EXPECT_EQ(typeOf(put("out/bai-planted", "abc")), "path-escapes");
  EXPECT_EQ(typeOf(put("pw", "owned")), "path-escapes");
  EXPECT_EQ(typeOf(call("POST", "/v1/mkdir", "out/bai-dir", uploadGrant())), "path-escapes");
  EXPECT_EQ(typeOf(call("GET", "/v1/list", "out", downloadGrant())), "path-escapes");
  EXPECT_FALSE(std::filesystem::exists("/etc/bai-planted"));
  EXPECT_FALSE(std::filesystem::exists("/etc/bai-dir"));
  EXPECT_EQ(readFile("/etc/passwd"), passwd);
  EXPECT_EQ(stagedUploads(), 0u);
}

TEST_F(TransferTest, ASymlinkedDirectoryLeavingTheFolderIsRefusedOneStayingInsideWorks) {
  writeFile(other.dir / "secret", "other folder's");
  writeFile(folder.dir / "sub" / "f", "inside");
  std::filesystem::create_directory_symlink("../" + kOtherFolderId, folder.dir / "sibling");
  std::filesystem::create_directory_symlink("sub", folder.dir / "alias");
  EXPECT_EQ(typeOf(download("sibling/secret")), "path-escapes");
  EXPECT_EQ(typeOf(call("GET", "/v1/list", "sibling", downloadGrant())), "path-escapes");
  EXPECT_EQ(typeOf(put("sibling/planted", "x")), "path-escapes");
  EXPECT_FALSE(std::filesystem::exists(other.dir / "planted"));
  auto inside = download("alias/f");
  EXPECT_EQ(inside.status, 200);
  EXPECT_EQ(bodyOf(inside), "inside");
}

TEST_F(TransferTest, FifosDevicesAndDirectoriesAreNotRegularFilesAndNothingBlocks) {
  ASSERT_EQ(::mkfifo((folder.dir / "fifo").c_str(), 0600), 0);
  std::filesystem::create_directory(folder.dir / "dir");
  const bool haveDevice = ::mknod((folder.dir / "null").c_str(), S_IFCHR | 0600, makedev(1, 3)) == 0;
  // A read-open of the FIFO would block for a writer forever: the answer must come at once.
  auto answered = std::async(std::launch::async, [this] { return download("fifo"); });
  ASSERT_EQ(answered.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "downloading a FIFO blocked";
  auto fifo = answered.get();
  EXPECT_EQ(fifo.status, 400);
  EXPECT_EQ(typeOf(fifo), "not-a-regular-file");
  EXPECT_EQ(typeOf(download("dir")), "not-a-regular-file");
  EXPECT_EQ(typeOf(download("")), "not-a-regular-file");
  if (haveDevice) {
    EXPECT_EQ(typeOf(download("null")), "not-a-regular-file");
    EXPECT_EQ(typeOf(put("null", "x")), "exists") << "an upload does not replace a device";
  } else {
    GTEST_LOG_(INFO) << "mknod refused (" << std::strerror(errno) << "): the device case is skipped";
  }
}

TEST_F(TransferTest, GrantsAreCheckedBeforeAnything) {
  writeFile(folder.dir / "sub" / "f", "data");
  writeFile(folder.dir / "top", "top");
  EXPECT_EQ(call("GET", "/v1/download", "top", "").status, 401);
  EXPECT_EQ(typeOf(call("GET", "/v1/download", "top", "")), "grant-missing");

  std::string tampered = downloadGrant();
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'a' ? 'b' : 'a';
  EXPECT_EQ(typeOf(call("GET", "/v1/download", "top", tampered)), "grant-invalid");
  EXPECT_EQ(typeOf(call("GET", "/v1/download", "top", "not-a-grant")), "grant-invalid");
  const std::string foreignKey = sp::signGrant(sp::Grant{sp::GrantOperation::Download, "default", kFolderId, "", "AK", nowMillis + 60000},
                                               sp::grantKey("another-token"));
  EXPECT_EQ(typeOf(call("GET", "/v1/download", "top", foreignKey)), "grant-invalid");

  const std::string expired = grant(sp::GrantOperation::Download, "", kFolderId, -1);
  auto refused = call("GET", "/v1/download", "top", expired);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(typeOf(refused), "grant-expired");

  // Another folder's grant reaches that folder only.
  EXPECT_EQ(typeOf(call("GET", "/v1/download", "top", grant(sp::GrantOperation::Download, "", kOtherFolderId))), "no-such-file");
  EXPECT_EQ(typeOf(call("GET", "/v1/download", "top", grant(sp::GrantOperation::Download, "", "00000000000000000000000000000000"))),
            "no-such-folder");

  // The wrong operation.
  EXPECT_EQ(typeOf(call("GET", "/v1/download", "top", uploadGrant())), "grant-scope");
  EXPECT_EQ(typeOf(call("PUT", "/v1/upload", "new", downloadGrant(), {}, "x")), "grant-scope");
  EXPECT_EQ(typeOf(call("POST", "/v1/mkdir", "d", downloadGrant())), "grant-scope");
  EXPECT_FALSE(std::filesystem::exists(folder.dir / "new"));

  // A grant for a sub-path covers it and what is below, nothing else.
  const std::string sub = grant(sp::GrantOperation::Download, "sub");
  EXPECT_EQ(bodyOf(call("GET", "/v1/download", "sub/f", sub)), "data");
  EXPECT_EQ(typeOf(call("GET", "/v1/download", "top", sub)), "grant-scope");
  EXPECT_EQ(typeOf(call("GET", "/v1/download", "subway", sub)), "grant-scope");
  EXPECT_EQ(typeOf(call("GET", "/v1/list", "", sub)), "grant-scope");
  EXPECT_EQ(call("GET", "/v1/list", "sub", sub).status, 200);
  EXPECT_EQ(typeOf(call("PUT", "/v1/upload", "elsewhere", grant(sp::GrantOperation::Upload, "sub"), {}, "x")), "grant-scope");
}

TEST_F(TransferTest, RangesWholeMiddleSuffixOpenEndedAndUnsatisfiable) {
  writeFile(folder.dir / "f", "0123456789");
  auto whole = download("f");
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(bodyOf(whole), "0123456789");
  EXPECT_EQ(whole.headers["Accept-Ranges"], "bytes");

  auto middle = download("f", "bytes=2-5");
  EXPECT_EQ(middle.status, 206);
  EXPECT_EQ(bodyOf(middle), "2345");
  EXPECT_EQ(middle.headers["Content-Range"], "bytes 2-5/10");

  auto suffix = download("f", "bytes=-3");
  EXPECT_EQ(suffix.status, 206);
  EXPECT_EQ(bodyOf(suffix), "789");
  EXPECT_EQ(suffix.headers["Content-Range"], "bytes 7-9/10");

  auto open = download("f", "bytes=4-");
  EXPECT_EQ(bodyOf(open), "456789");
  EXPECT_EQ(bodyOf(download("f", "bytes=8-100")), "89");

  auto beyond = download("f", "bytes=10-");
  EXPECT_EQ(beyond.status, 416);
  EXPECT_EQ(beyond.headers["Content-Range"], "bytes */10");
  EXPECT_EQ(download("f", "bytes=-0").status, 416);
  EXPECT_EQ(download("f", "bytes=5-2").status, 400);
  EXPECT_EQ(download("f", "bytes=0-1,4-5").status, 400);
  EXPECT_EQ(download("f", "lines=1-2").status, 400);
}

TEST_F(TransferTest, ListsOneDirectoryOrTheSubtreeWithoutFollowingSymlinks) {
  writeFile(folder.dir / "a" / "b" / "c.txt", "12345");
  writeFile(folder.dir / "top", "x");
  std::filesystem::create_directory_symlink("/etc", folder.dir / "etc-link");
  auto flat = call("GET", "/v1/list", "", downloadGrant());
  ASSERT_EQ(flat.status, 200);
  auto entries = sp::entriesFromJson(flat.body);
  ASSERT_TRUE(entries.ok());
  std::map<std::string, std::string> types;
  for (const auto& entry : *entries) types[entry.path] = entry.type;
  EXPECT_EQ(types, (std::map<std::string, std::string>{{"a", "dir"}, {"etc-link", "symlink"}, {"top", "file"}}));

  auto deep = sp::entriesFromJson(call("GET", "/v1/list", "a", uploadGrant(), {}).body);
  ASSERT_TRUE(deep.ok());
  EXPECT_EQ(deep->size(), 1u) << "not recursive: a/b only";

  http::Request request;
  request.method = "GET";
  request.path = "/v1/list";
  request.query = {{"path", ""}, {"recursive", "1"}};
  request.headers["x-bai-grant"] = downloadGrant();
  auto all = sp::entriesFromJson(api->handle(request).body);
  ASSERT_TRUE(all.ok());
  std::map<std::string, std::uint64_t> sizes;
  for (const auto& entry : *all) sizes[entry.path] = entry.size;
  EXPECT_EQ(sizes.size(), 5u) << "a, a/b, a/b/c.txt, etc-link, top: nothing from /etc";
  EXPECT_EQ(sizes["a/b/c.txt"], 5u);

  auto one = sp::entriesFromJson(call("GET", "/v1/list", "a/b/c.txt", downloadGrant()).body);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].path, "a/b/c.txt");
  EXPECT_EQ(typeOf(call("GET", "/v1/list", "missing", downloadGrant())), "no-such-file");

  writeFile(folder.dir / "a" / "\xff\xfe.bin", "not UTF-8");
  auto skipped = call("GET", "/v1/list", "a", downloadGrant());
  EXPECT_EQ(skipped.status, 200) << "a name that is not UTF-8 is left out, not a failed listing";
  auto rest = sp::entriesFromJson(skipped.body);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->size(), 1u);
}

TEST_F(TransferTest, MkdirMakesParentsAndNeedsAnUploadGrant) {
  auto made = call("POST", "/v1/mkdir", "x/y/z", uploadGrant());
  EXPECT_EQ(made.status, 201);
  EXPECT_TRUE(std::filesystem::is_directory(folder.dir / "x" / "y" / "z"));
  EXPECT_EQ(catalog->adopted, 3) << "each new directory becomes the owner's";
  writeFile(folder.dir / "file", "f");
  EXPECT_EQ(typeOf(call("POST", "/v1/mkdir", "file/sub", uploadGrant())), "exists");
}

}  // namespace
}  // namespace bai::storage::files::testing
