// The manager–storage-proxy wire: folder paths, grants, and the JSON both sides read.
#include <bai/protocol.hpp>
#include <bai/storage_protocol.hpp>

#include <gtest/gtest.h>

#include <string>

namespace sp = bai::storage_protocol;
using bai::protocol::CreateSessionRequest;
using bai::protocol::FolderMount;

namespace {

std::string refusal(std::string_view path) {
  auto normalised = sp::normalizeFolderPath(path);
  return normalised ? "" : normalised.error().message;
}

TEST(StorageProtocolTest, FolderPathsAreNormalisedOrRefusedWithTheReason) {
  EXPECT_EQ(*sp::normalizeFolderPath(""), "");
  EXPECT_EQ(*sp::normalizeFolderPath("a/b/c.txt"), "a/b/c.txt");
  EXPECT_EQ(*sp::normalizeFolderPath("data/"), "data");
  EXPECT_EQ(*sp::normalizeFolderPath("..."), "...");  // a name, not a parent
  EXPECT_NE(refusal("/etc/passwd").find("absolute"), std::string::npos);
  EXPECT_NE(refusal("../x").find("'..'"), std::string::npos);
  EXPECT_NE(refusal("a/../../x").find("'..'"), std::string::npos);
  EXPECT_NE(refusal("a/./b").find("'.'"), std::string::npos);
  EXPECT_NE(refusal("a//b").find("empty"), std::string::npos);
  EXPECT_NE(refusal("a//").find("empty"), std::string::npos);
  EXPECT_NE(refusal(std::string("a\0b", 3)).find("control"), std::string::npos);
  EXPECT_NE(refusal("a\nb").find("control"), std::string::npos);
  EXPECT_NE(refusal("\xff\xfe").find("UTF-8"), std::string::npos);
  EXPECT_NE(refusal(std::string(256, 'x')).find("255"), std::string::npos);
  EXPECT_TRUE(sp::normalizeFolderPath(std::string(255, 'x')).ok());
  std::string deep;
  while (deep.size() <= sp::kMaxPathBytes) deep += "abcdefg/";
  EXPECT_NE(refusal(deep).find("4096"), std::string::npos);
}

TEST(StorageProtocolTest, AGrantCoversItsPathAndWhatIsBelowIt) {
  EXPECT_TRUE(sp::pathWithin("a/b", ""));
  EXPECT_TRUE(sp::pathWithin("data", "data"));
  EXPECT_TRUE(sp::pathWithin("data/x/y", "data"));
  EXPECT_FALSE(sp::pathWithin("data2", "data"));
  EXPECT_FALSE(sp::pathWithin("dat", "data"));
  EXPECT_FALSE(sp::pathWithin("", "data"));
}

sp::Grant sampleGrant() {
  return {sp::GrantOperation::Upload, "default", std::string(32, 'a'), "in", "AKTEST", 2'000'000};
}

TEST(StorageProtocolTest, AGrantVerifiesWithItsKeyUntilItExpires) {
  const std::string key = sp::grantKey("storage-token");
  const std::string token = sp::signGrant(sampleGrant(), key);
  auto grant = sp::verifyGrant(token, key, 1'999'999);
  ASSERT_TRUE(grant.ok()) << grant.error().message;
  EXPECT_EQ(grant->operation, sp::GrantOperation::Upload);
  EXPECT_EQ(grant->volume, "default");
  EXPECT_EQ(grant->folderId, std::string(32, 'a'));
  EXPECT_EQ(grant->path, "in");
  EXPECT_EQ(grant->subject, "AKTEST");
  auto expired = sp::verifyGrant(token, key, 2'000'000);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().refusal, sp::GrantRefusal::Expired);
}

TEST(StorageProtocolTest, ATamperedOrForeignGrantIsRefused) {
  const std::string key = sp::grantKey("storage-token");
  EXPECT_NE(key, sp::grantKey("another-token"));
  std::string token = sp::signGrant(sampleGrant(), key);
  EXPECT_EQ(sp::verifyGrant(token, sp::grantKey("another-token"), 0).error().refusal, sp::GrantRefusal::BadSignature);
  // Change one hex digit of the payload (the operation or the path): the signature fails.
  std::string tampered = token;
  tampered[10] = tampered[10] == '0' ? '1' : '0';
  EXPECT_EQ(sp::verifyGrant(tampered, key, 0).error().refusal, sp::GrantRefusal::BadSignature);
  tampered = token;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_EQ(sp::verifyGrant(tampered, key, 0).error().refusal, sp::GrantRefusal::BadSignature);
  EXPECT_EQ(sp::verifyGrant("", key, 0).error().refusal, sp::GrantRefusal::Malformed);
  EXPECT_EQ(sp::verifyGrant("v1.abc", key, 0).error().refusal, sp::GrantRefusal::Malformed);
  EXPECT_EQ(sp::verifyGrant(std::string(20000, 'v'), key, 0).error().refusal, sp::GrantRefusal::Malformed);
}

TEST(StorageProtocolTest, FolderRequestsRoundTripAndRefuseBadFields) {
  sp::CreateFolderRequest request{"default", std::string(32, 'f'), 200001, 200001, 1u << 30};
  auto back = sp::CreateFolderRequest::fromJson(request.toJson());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->folderId, request.folderId);
  EXPECT_EQ(back->quotaBytes, request.quotaBytes);
  request.quotaBytes.reset();
  EXPECT_FALSE(sp::CreateFolderRequest::fromJson(request.toJson())->quotaBytes.has_value());
  request.folderId = "../../etc";
  EXPECT_NE(sp::CreateFolderRequest::fromJson(request.toJson()).error().message.find("folder_id"), std::string::npos);
  request.folderId = std::string(32, 'f');
  request.uid = 0;
  EXPECT_NE(sp::CreateFolderRequest::fromJson(request.toJson()).error().message.find("root"), std::string::npos);
  EXPECT_FALSE(sp::CreateFolderRequest::fromJson(R"({"volume":"default","folder_id":"x","uid":-1,"gid":1})").ok());

  sp::FolderInfo info{"default", std::string(32, 'f'), "/srv/v/f", 5, 6, std::nullopt, 123, 4};
  auto infoBack = sp::FolderInfo::fromJson(info.toJson());
  ASSERT_TRUE(infoBack.ok());
  EXPECT_EQ(infoBack->hostPath, "/srv/v/f");
  EXPECT_EQ(infoBack->usedBytes, 123u);

  EXPECT_EQ(*sp::accessFromJson(sp::accessToJson(sp::Permission::ReadOnly)), sp::Permission::ReadOnly);
  EXPECT_FALSE(sp::accessFromJson(R"({"permission":"rwx"})").ok());
  EXPECT_EQ(**sp::quotaFromJson(sp::quotaToJson(42)), 42u);
  EXPECT_FALSE(sp::quotaFromJson("{}").ok());

  std::vector<sp::FileEntry> entries{{"a/b", "file", 10, 0600, 5}};
  auto entriesBack = sp::entriesFromJson(sp::entriesToJson(entries));
  ASSERT_TRUE(entriesBack.ok());
  EXPECT_EQ((*entriesBack)[0].path, "a/b");
  EXPECT_EQ((*entriesBack)[0].mode, 0600u);
}

TEST(StorageProtocolTest, MountTargetsStayBelowTheSessionsHome) {
  EXPECT_TRUE(bai::protocol::isMountTarget("/home/work/data"));
  EXPECT_TRUE(bai::protocol::isMountTarget("/home/work/a/b"));
  EXPECT_FALSE(bai::protocol::isMountTarget("/home/work"));
  EXPECT_FALSE(bai::protocol::isMountTarget("/home/work/"));
  EXPECT_FALSE(bai::protocol::isMountTarget("/home/workers/x"));
  EXPECT_FALSE(bai::protocol::isMountTarget("/etc"));
  EXPECT_FALSE(bai::protocol::isMountTarget("/home/work/../../etc"));
  EXPECT_FALSE(bai::protocol::isMountTarget("/home/work/a//b"));
  EXPECT_FALSE(bai::protocol::isMountTarget("/home/work/a/"));
  EXPECT_FALSE(bai::protocol::isMountTarget("home/work/a"));
}

TEST(StorageProtocolTest, ASessionsMountsTravelToTheAgentAndBadOnesAreRefused) {
  CreateSessionRequest request;
  request.sessionId = "s1";
  request.command = {"true"};
  request.mounts = {FolderMount{std::string(32, 'a'), "/srv/v/a", "/home/work/data", true}};
  auto back = CreateSessionRequest::fromJson(request.toJson());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->mounts, request.mounts);

  request.mounts.push_back(FolderMount{std::string(32, 'b'), "/srv/v/b", "/home/work/data", false});
  EXPECT_NE(CreateSessionRequest::fromJson(request.toJson()).error().message.find("two mounts"), std::string::npos);
  request.mounts = {FolderMount{"x", "relative", "/home/work/x", false}};
  EXPECT_NE(CreateSessionRequest::fromJson(request.toJson()).error().message.find("absolute"), std::string::npos);
  request.mounts = {FolderMount{"x", "/srv/x", "/etc", false}};
  EXPECT_NE(CreateSessionRequest::fromJson(request.toJson()).error().message.find("below /home/work"), std::string::npos);
  request.mounts.assign(bai::protocol::kMaxFolderMounts + 1, FolderMount{"x", "/srv/x", "/home/work/x", false});
  EXPECT_NE(CreateSessionRequest::fromJson(request.toJson()).error().message.find("at most"), std::string::npos);
}

}  // namespace
