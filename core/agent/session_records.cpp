#include "agent/session_records.hpp"

#include "parse_json.hpp"
#include "runtime/atomic_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

namespace bai::core {

namespace {

constexpr const char* kRecordFile = "record.json";
constexpr std::uint64_t kMaxLogRead = 16u << 20;

}  // namespace

SessionRecords::SessionRecords(std::filesystem::path stateDir)
    : stateDir_(std::move(stateDir)), root_(stateDir_ / "sessions") {}

std::filesystem::path SessionRecords::dirOf(const std::string& id) const { return root_ / id; }

Result<void> SessionRecords::createRoot() const {
  std::error_code ec;
  std::filesystem::create_directories(root_, ec);
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

std::string SessionRecords::readLog(const std::string& id, const std::string& stream, std::uint64_t offset,
                                    std::uint64_t limit, std::optional<std::uint64_t> tail) const {
  const std::filesystem::path file = dirOf(id) / (stream + ".log");
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::string();
  if (tail) {
    std::error_code ec;
    const std::uint64_t size = std::filesystem::file_size(file, ec);
    offset = ec || size < *tail ? 0 : size - *tail;
    limit = *tail;
  }
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(static_cast<std::size_t>(std::min(limit, kMaxLogRead)), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<std::size_t>(in.gcount()));
  return out;
}

}  // namespace bai::core
