// Resumable uploads through TransferApi::handle: chunks, offsets, restarts, quota.
#include "transfer_fixture.hpp"

#include <nlohmann/json.hpp>

#include <curl/curl.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <atomic>
#include <thread>

namespace bai::storage::files::testing {
namespace {

std::uint64_t offsetOf(const http::Response& response) {
  return nlohmann::json::parse(response.body).at("offset").get<std::uint64_t>();
}
bool completeOf(const http::Response& response) { return nlohmann::json::parse(response.body).at("complete").get<bool>(); }

TEST_F(TransferTest, ChunksAppendAtTheStagedOffsetAndTheFileAppearsOnlyWhenComplete) {
  const std::string content = "hello, chunked world";
  auto started = start("docs/greeting.txt", content.size());
  ASSERT_EQ(started.status, 200) << started.body;
  EXPECT_EQ(offsetOf(started), 0u);
  EXPECT_EQ(started.headers["Upload-Offset"], "0");
  EXPECT_EQ(catalog->used(folder), content.size()) << "charged at the start";

  auto first = patch("docs/greeting.txt", content.size(), 0, content.substr(0, 7));
  EXPECT_EQ(offsetOf(first), 7u);
  EXPECT_FALSE(completeOf(first));
  EXPECT_FALSE(std::filesystem::exists(folder.dir / "docs" / "greeting.txt")) << "never a partial file at the path";

  auto wrong = patch("docs/greeting.txt", content.size(), 3, "lo, ");
  EXPECT_EQ(wrong.status, 409);
  EXPECT_EQ(typeOf(wrong), "offset-mismatch");
  EXPECT_EQ(offsetOf(wrong), 7u);
  EXPECT_EQ(wrong.headers["Upload-Offset"], "7");

  auto past = patch("docs/greeting.txt", content.size(), 7, content.substr(7) + "extra");
  EXPECT_EQ(typeOf(past), "invalid-request");

  auto resumed = start("docs/greeting.txt", content.size());
  EXPECT_EQ(offsetOf(resumed), 7u) << "a second POST resumes";

  auto last = patch("docs/greeting.txt", content.size(), 7, content.substr(7));
  EXPECT_EQ(last.status, 200);
  EXPECT_TRUE(completeOf(last));
  EXPECT_EQ(readFile(folder.dir / "docs" / "greeting.txt"), content);
  EXPECT_EQ(std::filesystem::status(folder.dir / "docs" / "greeting.txt").permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write) << "adopted: the owner's, 0600";
  EXPECT_EQ(stagedUploads(), 0u);
  EXPECT_EQ(catalog->used(folder), content.size());
  EXPECT_EQ(typeOf(patch("docs/greeting.txt", content.size(), 0, "x")), "no-such-upload");
  EXPECT_EQ(typeOf(call("PATCH", "/v1/upload", "f", uploadGrant(), {{"upload-length", "-1"}, {"upload-offset", "0"}})),
            "invalid-request");
  EXPECT_EQ(typeOf(call("POST", "/v1/upload", "f", uploadGrant(), {})), "invalid-request") << "Upload-Length is required";
}

TEST_F(TransferTest, AnUploadResumesAfterARestartFromTheStagedBytesAndIsChargedOnce) {
  restart(1000);
  std::string content(600, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 31);
  ASSERT_EQ(start("big.bin", content.size()).status, 200);
  ASSERT_EQ(offsetOf(patch("big.bin", content.size(), 0, content.substr(0, 250))), 250u);

  restart();  // a new catalog measures the disk: the 250 staged bytes count
  EXPECT_EQ(catalog->used(folder), 250u);
  auto resumed = start("big.bin", content.size());
  ASSERT_EQ(resumed.status, 200) << resumed.body;
  EXPECT_EQ(offsetOf(resumed), 250u);
  EXPECT_EQ(catalog->used(folder), 600u) << "charged only what the scan did not count";
  ASSERT_TRUE(completeOf(patch("big.bin", content.size(), 250, content.substr(250))));
  EXPECT_EQ(readFile(folder.dir / "big.bin"), content);
  EXPECT_EQ(catalog->used(folder), 600u);
  EXPECT_EQ(catalog->used(folder), FakeFolderCatalog::measure(folder));

  // A PATCH straight after a restart finds the staged upload too.
  ASSERT_EQ(start("second.bin", 10).status, 200);
  ASSERT_EQ(offsetOf(patch("second.bin", 10, 0, "01234")), 5u);
  restart();
  EXPECT_TRUE(completeOf(patch("second.bin", 10, 5, "56789")));
  EXPECT_EQ(readFile(folder.dir / "second.bin"), "0123456789");
  EXPECT_EQ(catalog->used(folder), FakeFolderCatalog::measure(folder));
}

TEST_F(TransferTest, AZeroLengthUploadCompletesAtOnceAndAPutWritesASmallFile) {
  auto empty = start("empty", 0);
  EXPECT_EQ(empty.status, 200);
  EXPECT_TRUE(completeOf(empty));
  EXPECT_TRUE(std::filesystem::is_regular_file(folder.dir / "empty"));
  EXPECT_EQ(std::filesystem::file_size(folder.dir / "empty"), 0u);

  auto small = put("nested/dirs/small.txt", "small file");
  EXPECT_EQ(small.status, 201);
  EXPECT_EQ(offsetOf(small), 10u);
  EXPECT_TRUE(completeOf(small));
  EXPECT_EQ(readFile(folder.dir / "nested" / "dirs" / "small.txt"), "small file");
  EXPECT_EQ(stagedUploads(), 0u);
  EXPECT_EQ(put("too-big", std::string((1 << 20) + 1, 'x')).status, 413);
}

TEST_F(TransferTest, AQuotaRefusalStagesNothingAndCreatesNothing) {
  restart(100);
  auto refused = start("dir/too-big", 101);
  EXPECT_EQ(refused.status, 413);
  EXPECT_EQ(typeOf(refused), "quota-exceeded");
  EXPECT_EQ(typeOf(put("too-big", std::string(101, 'x'))), "quota-exceeded");
  EXPECT_EQ(stagedUploads(), 0u);
  EXPECT_FALSE(std::filesystem::exists(folder.dir / "too-big"));
  EXPECT_FALSE(std::filesystem::exists(folder.dir / "dir"));
  EXPECT_EQ(catalog->used(folder), 0u);
  EXPECT_EQ(put("fits", std::string(100, 'x')).status, 201);
}

TEST_F(TransferTest, ReplacingAFileChargesOnlyTheDifferenceAndRefundsWhatItFrees) {
  restart(100);
  writeFile(folder.dir / "f", std::string(80, 'a'));
  EXPECT_EQ(catalog->used(folder), 80u);
  EXPECT_EQ(put("f", std::string(90, 'b')).status, 201) << "90 replaces 80: 10 more fit";
  EXPECT_EQ(catalog->used(folder), 90u);
  EXPECT_EQ(put("f", std::string(20, 'c')).status, 201);
  EXPECT_EQ(catalog->used(folder), 20u);
  EXPECT_EQ(readFile(folder.dir / "f"), std::string(20, 'c'));
  EXPECT_EQ(catalog->used(folder), FakeFolderCatalog::measure(folder));
}

TEST_F(TransferTest, ConcurrentUploadsCannotBothPassTheQuota) {
  restart(100);
  std::atomic<int> admitted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto response = start("file" + std::to_string(i), 60);
      if (response.status == 200) ++admitted;
      if (typeOf(response) == "quota-exceeded") ++refused;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(admitted, 1);
  EXPECT_EQ(refused, 7);
  EXPECT_EQ(stagedUploads(), 1u);
  EXPECT_EQ(catalog->used(folder), 60u);
}

TEST_F(TransferTest, AnUploadOntoADirectoryIsRefused) {
  std::filesystem::create_directories(folder.dir / "taken" / "inside");
  EXPECT_EQ(typeOf(start("taken", 3)), "exists");
  EXPECT_EQ(typeOf(put("taken", "abc")), "exists");
  // A directory that appears while the upload runs: dropped at completion, refunded.
  ASSERT_EQ(start("late", 3).status, 200);
  std::filesystem::create_directory(folder.dir / "late");
  auto completed = patch("late", 3, 0, "abc");
  EXPECT_EQ(typeOf(completed), "exists");
  EXPECT_EQ(stagedUploads(), 0u);
  EXPECT_EQ(catalog->used(folder), 0u);
}

TEST_F(TransferTest, TheJanitorRemovesAndRefundsUploadsPastTheirExpiry) {
  ASSERT_EQ(start("old", 50).status, 200);
  ASSERT_EQ(offsetOf(patch("old", 50, 0, std::string(20, 'o'))), 20u);
  EXPECT_EQ(api->removeExpiredUploads(folder), 0u) << "fresh";
  nowMillis += 25LL * 3600 * 1000;
  EXPECT_EQ(api->removeExpiredUploads(folder), 1u);
  EXPECT_EQ(stagedUploads(), 0u);
  EXPECT_EQ(catalog->used(folder), 0u);
  EXPECT_EQ(typeOf(patch("old", 50, 20, "x")), "no-such-upload");

  // One found on disk after a restart is refunded by its size, which the scan counted.
  ASSERT_EQ(start("older", 50).status, 200);
  ASSERT_EQ(offsetOf(patch("older", 50, 0, std::string(30, 'o'))), 30u);
  restart();
  EXPECT_EQ(catalog->used(folder), 30u);
  nowMillis += 25LL * 3600 * 1000;
  EXPECT_EQ(api->removeExpiredUploads(folder), 1u);
  EXPECT_EQ(catalog->used(folder), 0u);
}

// A proxy killed with SIGKILL in the middle of a chunk: the next one resumes from the staged
// bytes, which are a prefix of the file, and the result is the file exactly.
TEST_F(TransferTest, AnUploadSurvivesAKill9AtAnyMoment) {
  std::string content(32u << 20, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>((i * 2654435761u) >> 13);
  const std::size_t chunk = 1u << 20;
  ASSERT_EQ(start("killed.bin", content.size()).status, 200);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // the proxy: writes chunk after chunk until it is killed
    for (std::size_t offset = 0; offset < content.size(); offset += chunk) {
      (void)patch("killed.bin", content.size(), offset, content.substr(offset, chunk));
    }
    ::_exit(0);
  }
  // Kill it somewhere past the first few chunks, mid-write most likely.
  const std::string staged = (folder.stagingDir / std::filesystem::directory_iterator(folder.stagingDir)->path().filename()).string();
  std::error_code gone;
  while (std::filesystem::file_size(staged, gone) < 5 * chunk + 12345 && !gone) std::this_thread::yield();
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child finished before it was killed; the test proves nothing";

  restart();
  auto resumed = start("killed.bin", content.size());
  ASSERT_EQ(resumed.status, 200) << resumed.body;
  std::uint64_t offset = offsetOf(resumed);
  EXPECT_GT(offset, 5u * chunk);
  EXPECT_LT(offset, content.size());
  while (offset < content.size()) {
    auto next = patch("killed.bin", content.size(), offset, content.substr(offset, chunk));
    ASSERT_EQ(next.status, 200) << next.body;
    offset = offsetOf(next);
  }
  EXPECT_TRUE(readFile(folder.dir / "killed.bin") == content) << "the resumed file differs";
  EXPECT_EQ(catalog->used(folder), content.size());
}

// PATCH upload and download of a large file over loopback HTTP, through the real server:
// the figures for the report. Set BAI_STORAGE_BENCH_MIB to run it (e.g. 256).
std::size_t appendTo(char* data, std::size_t size, std::size_t count, void* out) {
  auto* sink = static_cast<std::pair<std::string*, std::size_t>*>(out);
  sink->first->append(data, size * count);
  return size * count;
}

TEST_F(TransferTest, LoopbackThroughput) {
  const char* mib = std::getenv("BAI_STORAGE_BENCH_MIB");
  if (mib == nullptr) GTEST_SKIP() << "set BAI_STORAGE_BENCH_MIB to measure";
  const std::size_t size = std::stoull(mib) << 20;
  const std::size_t chunk = 16u << 20;
  api = std::make_unique<TransferApi>(*catalog, sp::grantKey(kStorageToken), TransferOptions{chunk, 24LL * 3600 * 1000, {}});
  http::Server server({"127.0.0.1", 0, 2, chunk + 4096, "", ""}, [this](const http::Request& r) { return api->handle(r); });
  ASSERT_TRUE(server.start().ok());
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  std::string content(size, '\0');
  for (std::size_t i = 0; i < size; i += 8) content[i] = static_cast<char>(i >> 12);

  CURL* curl = curl_easy_init();
  std::string reply;
  std::pair<std::string*, std::size_t> sink{&reply, 0};
  auto perform = [&](const std::string& method, const std::string& url, const std::vector<std::string>& headers,
                     const char* body, std::size_t bodySize) {
    reply.clear();
    curl_slist* list = nullptr;
    for (const auto& header : headers) list = curl_slist_append(list, header.c_str());
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, method == "GET" ? nullptr : body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(bodySize));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &appendTo);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    EXPECT_EQ(curl_easy_perform(curl), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(list);
    return status;
  };
  const std::string grantHeader = "X-BAI-Grant: ";
  const std::string url = base + "/v1/upload?path=bench.bin";
  const std::string length = "Upload-Length: " + std::to_string(size);
  // CPU seconds of the whole process (client and server both): a figure a busy machine
  // distorts less than the wall clock.
  auto cpuSeconds = [] {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  };
  const double cpuBegan = cpuSeconds();
  const auto began = std::chrono::steady_clock::now();
  ASSERT_EQ(perform("POST", url, {grantHeader + uploadGrant(), length}, "", 0), 200);
  for (std::size_t offset = 0; offset < size; offset += chunk) {
    ASSERT_EQ(perform("PATCH", url, {grantHeader + uploadGrant(), length, "Upload-Offset: " + std::to_string(offset)},
                      content.data() + offset, std::min(chunk, size - offset)),
              200);
  }
  const auto uploaded = std::chrono::steady_clock::now();
  const double cpuUploaded = cpuSeconds();
  ASSERT_EQ(perform("GET", base + "/v1/download?path=bench.bin", {grantHeader + downloadGrant()}, nullptr, 0), 200);
  const auto downloaded = std::chrono::steady_clock::now();
  const double cpuDownloaded = cpuSeconds();
  EXPECT_TRUE(reply == content) << "the downloaded bytes differ";
  curl_easy_cleanup(curl);
  auto rate = [&](auto from, auto to) { return static_cast<double>(size >> 20) / std::chrono::duration<double>(to - from).count(); };
  std::printf("PATCH upload (%zu MiB chunks): %.0f MiB/s; download: %.0f MiB/s (%zu MiB)\n", chunk >> 20, rate(began, uploaded),
              rate(uploaded, downloaded), size >> 20);
  std::printf("CPU seconds (client and server): upload %.2f, download %.2f\n", cpuUploaded - cpuBegan, cpuDownloaded - cpuUploaded);
}

// The daemon's way: a PATCH's head is checked before any of its body is read, and while one
// request writes an upload no other can.
TEST_F(TransferTest, AStreamedChunkIsRefusedBeforeItsBodyAndHoldsItsUploadUntilItEnds) {
  const std::string content(100, 'x');
  ASSERT_EQ(start("big.bin", content.size()).status, 200);
  http::Request head;
  head.method = "PATCH";
  head.path = "/v1/upload";
  head.query["path"] = "big.bin";
  head.headers = {{"x-bai-grant", uploadGrant()}, {"upload-length", "100"}, {"upload-offset", "0"}, {"content-length", "60"}};

  auto first = api->stream(head);
  ASSERT_TRUE(first && std::holds_alternative<http::BodyStream>(*first));
  auto& writing = std::get<http::BodyStream>(*first);
  EXPECT_FALSE(writing.write(content.substr(0, 30)));
  auto second = api->stream(head);  // the same chunk again, say a client's retry
  ASSERT_TRUE(second && std::holds_alternative<http::Response>(*second));
  EXPECT_EQ(typeOf(std::get<http::Response>(*second)), "upload-busy");
  EXPECT_FALSE(writing.write(content.substr(30, 30)));
  auto done = writing.finish();
  EXPECT_EQ(done.status, 200);
  EXPECT_EQ(done.headers["Upload-Offset"], "60");
  first.reset();  // the request ended: the upload is free again

  auto stale = api->stream(head);  // offset 0 again: refused with the real offset, nothing read
  ASSERT_TRUE(stale && std::holds_alternative<http::Response>(*stale));
  EXPECT_EQ(std::get<http::Response>(*stale).status, 409);
  EXPECT_EQ(std::get<http::Response>(*stale).headers["Upload-Offset"], "60");

  head.headers["content-length"] = std::to_string((1 << 20) + 1);
  auto tooLarge = api->stream(head);
  ASSERT_TRUE(tooLarge && std::holds_alternative<http::Response>(*tooLarge));
  EXPECT_EQ(typeOf(std::get<http::Response>(*tooLarge)), "body-too-large");

  head.headers["content-length"] = "40";
  head.headers["upload-offset"] = "60";
  auto last = api->stream(head);
  ASSERT_TRUE(last && std::holds_alternative<http::BodyStream>(*last));
  auto& rest = std::get<http::BodyStream>(*last);
  auto overflow = rest.write(content.substr(0, 41));
  ASSERT_TRUE(overflow) << "more than the announced Content-Length";
  EXPECT_EQ(typeOf(*overflow), "invalid-request");
  EXPECT_FALSE(rest.write(content.substr(0, 40)));
  EXPECT_EQ(rest.finish().status, 200);
  EXPECT_EQ(readFile(folder.dir / "big.bin"), content);

  http::Request list = head;
  list.method = "GET";
  list.path = "/v1/list";
  EXPECT_FALSE(api->stream(list)) << "only uploads are streamed";
}

// A body that came whole (sent without a Content-Length) goes through handle() and the same
// writer: a PUT writes the file, a PATCH at a stale offset is refused with the real one.
TEST_F(TransferTest, AWholeBodyTakesTheSameWriterAsAStreamedOne) {
  auto whole = [&](const std::string& method, std::map<std::string, std::string> headers, std::string body) {
    http::Request request;
    request.method = method;
    request.path = "/v1/upload";
    request.query["path"] = "whole.txt";
    request.headers = std::move(headers);
    request.headers["x-bai-grant"] = uploadGrant();
    request.body = std::move(body);
    return api->handle(request);
  };
  EXPECT_EQ(whole("PUT", {}, "abc").status, 201);
  EXPECT_EQ(readFile(folder.dir / "whole.txt"), "abc");
  ASSERT_EQ(start("whole.txt", 6).status, 200);
  EXPECT_EQ(whole("PATCH", {{"upload-length", "6"}, {"upload-offset", "0"}}, "abc").status, 200);
  auto stale = whole("PATCH", {{"upload-length", "6"}, {"upload-offset", "0"}}, "def");
  EXPECT_EQ(typeOf(stale), "offset-mismatch");
  EXPECT_EQ(stale.headers["Upload-Offset"], "3");
  EXPECT_EQ(whole("PATCH", {{"upload-length", "6"}, {"upload-offset", "3"}}, "def").status, 200);
  EXPECT_EQ(readFile(folder.dir / "whole.txt"), "abcdef");
  EXPECT_EQ(typeOf(whole("PUT", {}, std::string((1 << 20) + 1, 'x'))), "body-too-large");
}

}  // namespace
}  // namespace bai::storage::files::testing
