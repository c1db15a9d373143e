#include "runtime/engine_streams.hpp"

#include "parse_json.hpp"

#include <algorithm>
#include <string>

namespace bai::core {

Result<void> OutputDemuxer::feed(std::string_view bytes, const OutputSink& sink) {
  while (!bytes.empty()) {
    if (payloadLeft_ == 0) {
      const std::size_t take = std::min(bytes.size(), sizeof header_ - headerFilled_);
      bytes.copy(header_ + headerFilled_, take);
      headerFilled_ += take;
      bytes.remove_prefix(take);
      if (headerFilled_ < sizeof header_) return {};
      headerFilled_ = 0;
      const auto byte = [this](int at) { return static_cast<std::size_t>(static_cast<unsigned char>(header_[at])); };
      const std::size_t stream = byte(0);
      if (stream > 2) return fail(ErrorCode::Internal, "output stream: unknown stream " + std::to_string(stream) + " in a frame header");
      if (byte(1) != 0 || byte(2) != 0 || byte(3) != 0) {
        return fail(ErrorCode::Internal, "output stream: a frame header without its 3 zero bytes");
      }
      const std::size_t length = (byte(4) << 24) | (byte(5) << 16) | (byte(6) << 8) | byte(7);
      if (length > maxFrameBytes_) {
        return fail(ErrorCode::Internal,
                    "output stream: a frame of " + std::to_string(length) + " bytes, more than the " +
                                std::to_string(maxFrameBytes_) + " allowed");
      }
      stream_ = stream == 0 ? 1 : static_cast<int>(stream);
      payloadLeft_ = length;
      continue;
    }
    const std::size_t take = std::min(bytes.size(), payloadLeft_);
    sink(stream_, bytes.substr(0, take));
    payloadLeft_ -= take;
    bytes.remove_prefix(take);
  }
  return {};
}

Result<void> OutputDemuxer::finish() const {
  if (headerFilled_ > 0 || payloadLeft_ > 0) {
    return fail(ErrorCode::Internal, payloadLeft_ > 0
                                         ? "output stream: ended " + std::to_string(payloadLeft_) + " bytes before the end of a frame"
                                         : std::string("output stream: ended inside a frame header"));
  }
  return {};
}

Result<void> PullProgressReader::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const std::size_t newline = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, newline);
    if (line_.size() + piece.size() > kMaxPullLineBytes) {
      return fail(ErrorCode::Internal, "pull progress: a line longer than " + std::to_string(kMaxPullLineBytes) + " bytes");
    }
    line_.append(piece);
    if (newline == std::string_view::npos) return {};
    bytes.remove_prefix(newline + 1);
    auto read = readLine(line_);
    line_.clear();
    if (!read) return read;
  }
  return {};
}

Result<void> PullProgressReader::finish() {
  auto read = readLine(line_);
  line_.clear();
  return read;
}

Result<void> PullProgressReader::readLine(std::string_view line) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return {};
  auto parsed = parseJson(line);
  if (!parsed) return fail(ErrorCode::Internal, "pull progress: " + parsed.error().message);
  const nlohmann::json& progress = *parsed;
  if (!progress.is_object()) return fail(ErrorCode::Internal, "pull progress: a line that is not a JSON object");
  const auto text = [](const nlohmann::json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); };
  if (auto detail = progress.find("errorDetail"); detail != progress.end()) {
    if (detail->is_object() && detail->contains("message")) return fail(ErrorCode::Internal, text((*detail)["message"]));
    if (!progress.contains("error")) return fail(ErrorCode::Internal, text(*detail));
  }
  if (auto error = progress.find("error"); error != progress.end()) return fail(ErrorCode::Internal, text(*error));
  return {};
}

}  // namespace bai::core
