// The transfer engine (bai/vfolder_transfer.hpp) against one in-test server playing both
// the manager (grants) and a storage proxy (list, download, upload, mkdir): resumed
// uploads after a dropped connection, ranged download resumes, expired grants, trees.
#include <bai/vfolder_transfer.hpp>

#include "http_server.hpp"
#include "scripted_manager.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <sys/xattr.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <set>

namespace bai::client {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

http::Response problem(int status, const std::string& type, const std::string& detail) {
  return {status, "application/json", Json{{"type", type}, {"title", type}, {"detail", detail}}.dump(), {}};
}

class FakeStorage {
 public:
  struct Upload {
    std::uint64_t length = 0;
    std::string staged;
  };

  FakeStorage()
      : server_({"127.0.0.1", 0, 2, 8 << 20, "", ""}, [this](http::Request request, http::Responder respond) {
          std::unique_lock<std::mutex> lock(mutex);
          targets.push_back(request.method + " " + request.target);
          if (request.header("range") != "") ranges.push_back(request.header("range"));
          auto answer = handle(request);
          if (!answer) return;  // the connection drops: the responder goes unanswered
          lock.unlock();
          respond(std::move(*answer));
        }) {
    EXPECT_TRUE(server_.start().ok());
  }
  ~FakeStorage() { server_.stop(); }

  Client client() const {
    Config config;
    config.endpoint = url();
    config.accessKey = "AKBAITRANSFER000001";
    config.secretKey = "transfer-secret";
    return Client(config);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }

  std::mutex mutex;
  std::map<std::string, std::string> files;  // path -> content
  std::set<std::string> dirs;                // made by mkdir
  std::map<std::string, Upload> uploads;
  std::vector<std::string> grants;  // "operation path" of each grant issued
  std::vector<std::string> targets;
  std::vector<std::string> ranges;
  std::vector<std::uint64_t> patchOffsets;
  int dropOnPatch = 0;             // the Nth PATCH from now stages dropStagedBytes, then the connection drops
  bool dropping = false;           // ... and so does every PATCH after it, until this is reset
  std::size_t dropStagedBytes = 0;
  int expireGrants = 0;            // the next N proxy calls answer grant-expired
  std::optional<http::Response> refuseUploads;
  std::vector<std::string> hostileEntries;  // listed as files besides the real ones

 private:
  std::optional<http::Response> handle(const http::Request& request) {
    if (request.path == "/v1/vfolders/data/grants") {
      if (request.header("authorization").rfind("BAI-HMAC-SHA256 ", 0) != 0) return problem(401, "unauthorized", "unsigned");
      const Json body = Json::parse(request.body);
      grants.push_back(body.at("operation").get<std::string>() + " " + body.at("path").get<std::string>());
      return http::Response{200, "application/json",
                            Json{{"url", url()}, {"grant", "grant-" + std::to_string(grants.size())},
                                 {"path", body.at("path")}, {"expires_at", "2026-12-07T23:00:00Z"}}.dump(), {}};
    }
    if (request.header("x-bai-grant") != "grant-" + std::to_string(grants.size())) {
      return problem(403, "grant-invalid", "not the latest grant");
    }
    if (expireGrants > 0) {
      --expireGrants;
      return problem(403, "grant-expired", "the grant expired");
    }
    const std::string path = request.query.count("path") ? request.query.at("path") : "";
    if (request.path == "/v1/list") return list(path, request.query.count("recursive") && request.query.at("recursive") == "1");
    if (request.path == "/v1/download") return download(path, request.header("range"));
    if (request.path == "/v1/mkdir") {
      dirs.insert(path);
      return http::Response{201, "application/json", "{}", {}};
    }
    if (request.path != "/v1/upload") return problem(404, "not-found", request.path);
    if (refuseUploads) return *refuseUploads;
    if (request.method == "PUT") {
      files[path] = request.body;
      return uploadState(201, request.body.size(), true);
    }
    const std::uint64_t length = std::stoull(request.header("upload-length"));
    Upload& upload = uploads[path];
    if (request.method == "POST") {
      if (upload.length != length) upload = Upload{length, ""};
      return uploadState(200, upload.staged.size(), false);
    }
    const std::uint64_t offset = std::stoull(request.header("upload-offset"));
    patchOffsets.push_back(offset);
    if (offset != upload.staged.size()) {
      http::Response mismatch = problem(409, "offset-mismatch", "wrong offset");
      mismatch.headers["Upload-Offset"] = std::to_string(upload.staged.size());
      return mismatch;
    }
    if (dropOnPatch > 0 && --dropOnPatch == 0) dropping = true;
    if (dropping) {  // libcurl sends a request once more on a fresh connection: that one drops too
      upload.staged += request.body.substr(0, dropStagedBytes);
      dropStagedBytes = 0;
      return std::nullopt;
    }
    upload.staged += request.body;
    if (upload.staged.size() < upload.length) return uploadState(200, upload.staged.size(), false);
    files[path] = upload.staged;
    uploads.erase(path);
    return uploadState(200, length, true);
  }

  static http::Response uploadState(int status, std::uint64_t offset, bool complete) {
    return {status, "application/json", Json{{"offset", offset}, {"complete", complete}}.dump(),
            {{"Upload-Offset", std::to_string(offset)}}};
  }

  static Json entry(const std::string& path, const std::string& type, std::uint64_t size) {
    return {{"path", path}, {"type", type}, {"size", size}, {"mode", 420}, {"modified_at_ms", 1}};
  }

  http::Response list(const std::string& root, bool recursive) {
    Json entries = Json::array();
    if (files.count(root)) {
      entries.push_back(entry(root, "file", files[root].size()));
    } else {
      std::set<std::string> directories(dirs.begin(), dirs.end());
      for (const auto& [path, content] : files) {
        for (std::size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
          directories.insert(path.substr(0, slash));
        }
      }
      const auto below = [&](const std::string& path) {
        if (!root.empty() && path.rfind(root + "/", 0) != 0) return false;
        const std::string rest = root.empty() ? path : path.substr(root.size() + 1);
        return !rest.empty() && (recursive || rest.find('/') == std::string::npos);
      };
      for (const std::string& directory : directories) {
        if (below(directory)) entries.push_back(entry(directory, "dir", 0));
      }
      for (const auto& [path, content] : files) {
        if (below(path)) entries.push_back(entry(path, "file", content.size()));
      }
    }
    for (const std::string& path : hostileEntries) entries.push_back(entry(path, "file", 4));
    return {200, "application/json", Json{{"entries", entries}}.dump(), {}};
  }

  http::Response download(const std::string& path, const std::string& range) {
    if (!files.count(path)) return problem(404, "no-such-file", path);
    const std::string& content = files[path];
    if (range.empty()) return {200, "application/octet-stream", content, {{"Accept-Ranges", "bytes"}}};
    const std::uint64_t start = std::stoull(range.substr(std::string("bytes=").size()));
    if (start >= content.size()) {
      return {416, "application/json", "{}", {{"Content-Range", "bytes */" + std::to_string(content.size())}}};
    }
    return {206, "application/octet-stream", content.substr(start),
            {{"Content-Range", "bytes " + std::to_string(start) + "-" + std::to_string(content.size() - 1) + "/" +
                                   std::to_string(content.size())}}};
  }

  http::Server server_;
};

std::string randomBytes(std::size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(random() & 0xff);
  return out;
}

void writeFile(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TransferOptions smallChunks() {
  TransferOptions options;
  options.singleRequestBytes = 1024;
  options.chunkBytes = 4096;
  options.requestTimeout = std::chrono::milliseconds(5000);
  return options;
}

TEST(VfolderTransfer, AnUploadInterruptedMidChunkResumesFromTheOffsetTheProxyReports) {
  FakeStorage fake;
  test::TempDir local;
  const std::string content = randomBytes(20000, 1);
  writeFile(local.path() / "big.bin", content);
  fake.dropOnPatch = 2;  // the second chunk: 1000 of its bytes arrive, then the connection drops
  fake.dropStagedBytes = 1000;

  auto first = uploadToVfolder(fake.client(), "data", local.path() / "big.bin", "in", smallChunks());
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().type, "proxy-unreachable");
  EXPECT_FALSE(fake.files.count("in/big.bin")) << "never a partial file at its path";
  ASSERT_EQ(fake.uploads["in/big.bin"].staged.size(), 4096u + 1000u);

  fake.dropping = false;
  fake.patchOffsets.clear();
  std::vector<TransferProgress> seen;
  TransferOptions options = smallChunks();
  options.progress = [&](const TransferProgress& progress) { seen.push_back(progress); };
  auto second = uploadToVfolder(fake.client(), "data", local.path() / "big.bin", "in", options);
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_EQ(fake.files["in/big.bin"], content);
  ASSERT_FALSE(fake.patchOffsets.empty());
  EXPECT_EQ(fake.patchOffsets.front(), 5096u) << "the re-run sends from the staged offset, not from 0";
  EXPECT_EQ(second->bytes, 20000u - 5096u);
  EXPECT_EQ(second->files, 1u);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().bytesDone, 20000u);
  EXPECT_EQ(seen.back().bytesTotal, 20000u);
  EXPECT_EQ(seen.back().filesDone, 1u);
}

TEST(VfolderTransfer, ASmallFileGoesInOnePut) {
  FakeStorage fake;
  test::TempDir local;
  writeFile(local.path() / "small.txt", "hello");
  auto done = uploadToVfolder(fake.client(), "data", local.path() / "small.txt", "", smallChunks());
  ASSERT_TRUE(done.ok()) << done.error().message();
  EXPECT_EQ(fake.files["small.txt"], "hello");
  EXPECT_EQ(fake.grants, std::vector<std::string>{"upload small.txt"});
  EXPECT_EQ(fake.targets.back(), "PUT /v1/upload?path=small.txt");
}

TEST(VfolderTransfer, ADownloadResumesItsPartWithARange) {
  FakeStorage fake;
  test::TempDir local;
  const std::string content = randomBytes(10000, 2);
  fake.files["out/big.bin"] = content;
  const fs::path part = local.path() / "big.bin.bai-part";
  writeFile(part, content.substr(0, 3000));
  if (::setxattr(part.c_str(), "user.bai.size", "10000", 5, 0) != 0) GTEST_SKIP() << "no user xattrs on " << local.path();

  auto done = downloadFromVfolder(fake.client(), "data", "out/big.bin", local.path(), smallChunks());
  ASSERT_TRUE(done.ok()) << done.error().message();
  EXPECT_EQ(fake.ranges, std::vector<std::string>{"bytes=3000-"});
  EXPECT_EQ(readFile(local.path() / "big.bin"), content);
  EXPECT_FALSE(fs::exists(part));
  EXPECT_EQ(done->bytes, 7000u);
}

TEST(VfolderTransfer, APartOfAFileThatChangedSizeStartsOver) {
  FakeStorage fake;
  test::TempDir local;
  const std::string content = randomBytes(8000, 3);
  fake.files["big.bin"] = content;
  const fs::path part = local.path() / "big.bin.bai-part";
  writeFile(part, std::string(3000, 'x'));
  ::setxattr(part.c_str(), "user.bai.size", "9000", 4, 0);  // the file was 9000 bytes then

  auto done = downloadFromVfolder(fake.client(), "data", "big.bin", local.path(), smallChunks());
  ASSERT_TRUE(done.ok()) << done.error().message();
  EXPECT_TRUE(fake.ranges.empty()) << "no range: the old part belongs to another file";
  EXPECT_EQ(readFile(local.path() / "big.bin"), content);
}

TEST(VfolderTransfer, AnExpiredGrantIsRequestedAgainOnce) {
  FakeStorage fake;
  test::TempDir local;
  writeFile(local.path() / "a.txt", "abc");
  fake.expireGrants = 1;
  auto done = uploadToVfolder(fake.client(), "data", local.path() / "a.txt", "in", smallChunks());
  ASSERT_TRUE(done.ok()) << done.error().message();
  EXPECT_EQ(fake.grants.size(), 2u);
  EXPECT_EQ(fake.files["in/a.txt"], "abc");

  fake.grants.clear();
  fake.expireGrants = 2;  // expired again right away: the second refusal is the error
  auto refused = uploadToVfolder(fake.client(), "data", local.path() / "a.txt", "in", smallChunks());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().type, "grant-expired");
  EXPECT_EQ(fake.grants.size(), 2u);
}

TEST(VfolderTransfer, ATreeGoesUpAndComesBackWithItsEmptyDirectoryAndWithoutItsSymlink) {
  FakeStorage fake;
  test::TempDir local;
  const fs::path top = local.path() / "top";
  writeFile(top / "a.txt", "alpha");
  writeFile(top / "sub/b.bin", randomBytes(5000, 4));
  writeFile(top / "sub/deeper/c", "gamma");
  fs::create_directories(top / "empty");
  fs::create_symlink("a.txt", top / "link");

  auto up = uploadToVfolder(fake.client(), "data", top, "in", smallChunks());
  ASSERT_FALSE(uploadToVfolder(fake.client(), "data", top, "in", TransferOptions{}).ok()) << "a directory needs -r";
  TransferOptions options = smallChunks();
  options.recursive = true;
  up = uploadToVfolder(fake.client(), "data", top, "in", options);
  ASSERT_TRUE(up.ok()) << up.error().message();
  EXPECT_EQ(fake.files["in/top/a.txt"], "alpha");
  EXPECT_EQ(fake.files["in/top/sub/b.bin"], readFile(top / "sub/b.bin"));
  EXPECT_EQ(fake.files["in/top/sub/deeper/c"], "gamma");
  EXPECT_FALSE(fake.files.count("in/top/link"));
  EXPECT_EQ(fake.dirs, std::set<std::string>{"in/top/empty"});
  EXPECT_EQ(up->files, 3u);
  ASSERT_EQ(up->skipped.size(), 1u);
  EXPECT_NE(up->skipped[0].find("link"), std::string::npos);
  EXPECT_EQ(fake.grants, std::vector<std::string>{"upload in/top"}) << "one grant for the whole tree";

  test::TempDir back;
  auto down = downloadFromVfolder(fake.client(), "data", "in/top", back.path(), options);
  ASSERT_TRUE(down.ok()) << down.error().message();
  EXPECT_EQ(readFile(back.path() / "top/a.txt"), "alpha");
  EXPECT_EQ(readFile(back.path() / "top/sub/b.bin"), readFile(top / "sub/b.bin"));
  EXPECT_EQ(readFile(back.path() / "top/sub/deeper/c"), "gamma");
  EXPECT_TRUE(fs::is_directory(back.path() / "top/empty"));
  EXPECT_EQ(down->files, 3u);
  EXPECT_EQ(fake.grants.back(), "download in/top");
}

TEST(VfolderTransfer, AListedPathLeadingOutsideTheDownloadIsSkipped) {
  FakeStorage fake;
  test::TempDir local;
  fake.files["d/x"] = "x";
  fake.files["evil"] = "evil";
  fake.hostileEntries = {"d/../evil", "d//y", "/etc/evil", "other/evil"};
  TransferOptions options = smallChunks();
  options.recursive = true;
  auto done = downloadFromVfolder(fake.client(), "data", "d", local.path() / "in", options);
  ASSERT_TRUE(done.ok()) << done.error().message();
  EXPECT_EQ(readFile(local.path() / "in/d/x"), "x");
  EXPECT_EQ(done->files, 1u);
  EXPECT_EQ(done->skipped.size(), 4u);
  EXPECT_FALSE(fs::exists(local.path() / "in/evil"));
  EXPECT_FALSE(fs::exists(local.path() / "evil"));
}

TEST(VfolderTransfer, ADirectoryIsDownloadedOnlyWithRecursive) {
  FakeStorage fake;
  test::TempDir local;
  fake.files["d/x"] = "x";
  auto refused = downloadFromVfolder(fake.client(), "data", "d", local.path(), smallChunks());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().type, "is-a-directory");
  EXPECT_FALSE(fs::exists(local.path() / "d"));
}

TEST(VfolderTransfer, TheProxysRefusalIsTheErrorWithItsTypeAndDetail) {
  FakeStorage fake;
  test::TempDir local;
  writeFile(local.path() / "big.bin", randomBytes(3000, 5));
  fake.refuseUploads = problem(413, "quota-exceeded", "3000 bytes more than the 1000 left");
  auto refused = uploadToVfolder(fake.client(), "data", local.path() / "big.bin", "", smallChunks());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().status, 413);
  EXPECT_EQ(refused.error().type, "quota-exceeded");
  EXPECT_NE(refused.error().detail.find("3000 bytes more than the 1000 left"), std::string::npos);
  EXPECT_NE(refused.error().detail.find("big.bin"), std::string::npos) << "names the local file";
  EXPECT_EQ(refused.error().detail.find("grant-"), std::string::npos) << "never the grant";
}

// The bai CLI (BAI_CLI, set by meson test) against the same fake.
class VfolderCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* cli = std::getenv("BAI_CLI");
    if (cli == nullptr) GTEST_SKIP() << "BAI_CLI (the built bai) is not set: run through meson test";
    cli_ = cli;
  }
  using Run = testing::CliRun;
  Run bai(const std::string& args) { return testing::runCli(cli_, fake_.client().config(), args); }
  FakeStorage fake_;
  std::string cli_;
  test::TempDir local_;
};

TEST_F(VfolderCli, UploadAndDownloadPrintOneSummaryLineWhenNotATerminal) {
  writeFile(local_.path() / "a.txt", "alpha");
  Run up = bai("vfolder upload data '" + (local_.path() / "a.txt").string() + "' --to in");
  EXPECT_EQ(up.exitCode, 0) << up.out;
  EXPECT_EQ(fake_.files["in/a.txt"], "alpha");
  EXPECT_NE(up.out.find("5 B in "), std::string::npos) << up.out;
  EXPECT_NE(up.out.find(" MiB/s (1 file)\n"), std::string::npos) << up.out;
  EXPECT_EQ(up.out.find('\r'), std::string::npos) << "no bar when stderr is not a terminal";

  Run down = bai("--json vfolder download data in/a.txt --to '" + (local_.path() / "back").string() + "'");
  EXPECT_EQ(down.exitCode, 0) << down.out;
  EXPECT_EQ(readFile(local_.path() / "back/a.txt"), "alpha");
  const Json summary = Json::parse(down.out);
  EXPECT_EQ(summary["bytes"], 5);
  EXPECT_EQ(summary["files"], 1);
}

TEST_F(VfolderCli, RefusalsShowTheirTypeAndDetail) {
  writeFile(local_.path() / "a.txt", "alpha");
  fake_.refuseUploads = problem(413, "quota-exceeded", "5 bytes more than the 0 left");
  Run refused = bai("vfolder upload data '" + (local_.path() / "a.txt").string() + "'");
  EXPECT_EQ(refused.exitCode, 1) << refused.out;
  EXPECT_NE(refused.out.find("5 bytes more than the 0 left"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("[quota-exceeded, HTTP 413]"), std::string::npos) << refused.out;

  Run directory = bai("vfolder upload data '" + local_.path().string() + "'");
  EXPECT_EQ(directory.exitCode, 2) << directory.out;
  EXPECT_NE(directory.out.find("use -r"), std::string::npos) << directory.out;
}

TEST_F(VfolderCli, ABadMountSpecIsNamed) {
  Run run = bai("session create --mount data:/a:/b -- true");
  EXPECT_EQ(run.exitCode, 2) << run.out;
  EXPECT_NE(run.out.find("'data:/a:/b'"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace bai::client
