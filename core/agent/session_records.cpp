#include "agent/session_records.hpp"

#include "parse_json.hpp"
#include "runtime/atomic_file.hpp"

#include <bai/protocol.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

namespace bai::core {

namespace {

constexpr const char* kRecordFile = "record.json";

}  // namespace

SessionRecords::SessionRecords(std::filesystem::path stateDir)
    : stateDir_(std::move(stateDir)), root_(stateDir_ / "sessions") {}

std::filesystem::path SessionRecords::dirOf(const std::string& id) const { return root_ / id; }

Result<void> SessionRecords::createRoot() const {
  std::error_code ec;
  std::filesystem::create_directories(root_, ec);
  // Only the agent passes: a session's work dir below is reachable only through its sandbox.
  if (!ec) std::filesystem::permissions(root_, std::filesystem::perms::owner_all, ec);
  if (ec) return fail(ErrorCode::InvalidArgument, "agent.state-dir " + stateDir_.string() + ": " + ec.message());
  return {};
}

Result<void> SessionRecords::save(const SessionRecord& session) const {
  std::error_code ec;
  std::filesystem::create_directories(dirOf(session.info.id), ec);
  if (ec) return fail(ErrorCode::Internal, ec.message());
  nlohmann::json record{{"request", nlohmann::json::parse(session.request.toJson())},
                        {"info", nlohmann::json::parse(session.info.toJson())},
                        {"prepared_plugins", session.preparedPlugins},
                        {"destroy_requested", session.destroyRequested}};
  return writeFileAtomically(dirOf(session.info.id) / kRecordFile, record.dump());
}

void SessionRecords::update(const SessionRecord& session, const LogSink& log) const {
  if (auto saved = save(session); !saved) {
    log(LogLevel::Error, "agent", "session " + session.info.id + ": cannot save its record: " + saved.error().message);
  }
}

std::vector<SessionRecord> SessionRecords::loadAll(const LogSink& log) const {
  std::vector<SessionRecord> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root_, ec)) {
    const std::string id = entry.path().filename().string();
    auto text = readWholeFile(entry.path() / kRecordFile);
    if (!text) continue;  // a dir without a record never got resources
    auto parsed = parseJson(*text);
    if (!parsed) {
      log(LogLevel::Error, "agent", "session " + id + ": unreadable record.json (" + parsed.error().message + "); left as it is");
      continue;
    }
    nlohmann::json& record = *parsed;
    auto request = protocol::CreateSessionRequest::fromJson(record["request"].dump());
    auto info = protocol::SessionInfo::fromJson(record["info"].dump());
    if (!request || !info) {
      log(LogLevel::Error, "agent", "session " + id + ": invalid record.json; left as it is");
      continue;
    }
    out.push_back(SessionRecord{*request, {}, *info, record.value("prepared_plugins", std::vector<std::string>{}),
                                record.value("destroy_requested", false), true});
  }
  return out;
}

LogPage SessionRecords::readLog(const std::string& id, const std::string& stream, std::uint64_t offset,
                                std::uint64_t limit, std::optional<std::uint64_t> tail) const {
  const std::filesystem::path file = dirOf(id) / (stream + ".log");
  std::ifstream in(file, std::ios::binary);
  if (!in) return LogPage{};
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(file, ec);
  LogPage page{"", 0, ec ? 0 : size};
  if (tail) {
    // The last page of a longer tail: a reader pages back from its offset.
    limit = std::min(*tail, protocol::kLogPageBytes);
    offset = page.size < limit ? 0 : page.size - limit;
  }
  page.offset = std::min(offset, page.size);
  in.seekg(static_cast<std::streamoff>(page.offset));
  page.text.resize(static_cast<std::size_t>(std::min({limit, protocol::kLogPageBytes, page.size - page.offset})));
  in.read(page.text.data(), static_cast<std::streamsize>(page.text.size()));
  page.text.resize(static_cast<std::size_t>(in.gcount()));
  return page;
}

}  // namespace bai::core
