#include "runtime/console_protocol.hpp"

#include "parse_json.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace bai::core {
namespace {

using nlohmann::json;

constexpr std::size_t kLengthBytes = 4;
constexpr std::size_t kMaxExecArguments = 4096;

Failure<Error> badExecField(const char* field, const char* expected) {
  return fail(ErrorCode::InvalidArgument, std::string("exec request: '") + field + "' must be " + expected);
}

Result<void> readExecCommand(const json& document, ShimExecRequest& out) {
  auto found = document.find("command");
  bool valid = found != document.end() && found->is_array() && !found->empty() && found->size() <= kMaxExecArguments;
  for (std::size_t i = 0; valid && i < found->size(); ++i) valid = (*found)[i].is_string();
  if (!valid || (*found)[0].get_ref<const std::string&>().empty()) {
    return badExecField("command", "a non-empty array of strings whose first is not empty");
  }
  out.command = found->get<std::vector<std::string>>();
  return {};
}

Result<void> readExecEnv(const json& document, ShimExecRequest& out) {
  json env = document.value("env", json::object());
  if (!env.is_object()) return badExecField("env", "an object of strings");
  for (const auto& [name, value] : env.items()) {
    if (!value.is_string() || name.empty() || name.find('=') != std::string::npos) {
      return badExecField("env", "an object of strings whose names are not empty and hold no '='");
    }
    out.env[name] = value.get<std::string>();
  }
  return {};
}

Result<void> readExecFlagsAndSize(const json& document, ShimExecRequest& out) {
  json tty = document.value("tty", json(false));
  json openStdin = document.value("stdin", json(false));
  if (!tty.is_boolean()) return badExecField("tty", "a boolean");
  if (!openStdin.is_boolean()) return badExecField("stdin", "a boolean");
  out.tty = tty.get<bool>();
  out.openStdin = openStdin.get<bool>();
  json rows = document.value("rows", json());
  json cols = document.value("cols", json());
  if (rows.is_null() && cols.is_null()) return {};
  auto isDimension = [](const json& value) {
    return value.is_number_integer() && value.get<std::int64_t>() >= 1 && value.get<std::int64_t>() <= 0xffff;
  };
  if (!isDimension(rows) || !isDimension(cols)) return badExecField("rows", "given with 'cols', both from 1 to 65535");
  out.size = stream::TerminalSize{rows.get<std::uint16_t>(), cols.get<std::uint16_t>()};
  return {};
}

}  // namespace

std::string renderExecRequest(const ShimExecRequest& request) {
  json document = {{"command", request.command}, {"env", request.env}, {"tty", request.tty},
                   {"stdin", request.openStdin}};
  if (request.size) {
    document["rows"] = request.size->rows;
    document["cols"] = request.size->cols;
  }
  return document.dump();
}

Result<ShimExecRequest> parseExecRequest(std::string_view text) {
  Result<json> document = parseJson(text);
  if (!document.ok()) return fail(ErrorCode::InvalidArgument, "exec request: " + document.error().message);
  if (!document->is_object()) return fail(ErrorCode::InvalidArgument, "exec request: not a JSON object");
  ShimExecRequest request;
  for (auto read : {readExecCommand, readExecEnv, readExecFlagsAndSize}) {
    if (Result<void> field = read(*document, request); !field.ok()) return Failure{field.error()};
  }
  return request;
}

std::string encodeSocketFrame(stream::FrameType type, std::string_view payload) {
  std::string out = stream::lengthPrefix(1 + payload.size());
  out.reserve(kLengthBytes + 1 + payload.size());
  out.push_back(static_cast<char>(type));
  out.append(payload);
  return out;
}

void SocketFrameDecoder::append(std::string_view bytes) {
  buffered_.erase(0, consumed_);
  consumed_ = 0;
  buffered_.append(bytes);
}

Result<std::optional<stream::Frame>> SocketFrameDecoder::next() {
  const std::string_view pending = std::string_view(buffered_).substr(consumed_);
  if (pending.size() < kLengthBytes) return std::optional<stream::Frame>();
  const std::size_t length = stream::readLengthPrefix(pending.data());
  if (length > kMaxConsoleFrameBytes) {
    return fail(ErrorCode::OutOfRange, "a frame of " + std::to_string(length) + " bytes is over the limit of " +
                                           std::to_string(kMaxConsoleFrameBytes));
  }
  if (pending.size() < kLengthBytes + length) return std::optional<stream::Frame>();
  std::optional<stream::Frame> frame = stream::decodeFrame(pending.substr(kLengthBytes, length));
  if (!frame) return fail(ErrorCode::InvalidArgument, "an empty frame or one of an unknown type");
  consumed_ += kLengthBytes + length;
  return frame;
}

Result<UnixSocketAddress> UnixSocketAddress::of(const std::filesystem::path& path) {
  UnixSocketAddress out;
  out.address_.sun_family = AF_UNIX;
  std::string text = path.string();
  if (text.size() >= sizeof out.address_.sun_path) {
    out.dirFd_ = ::open(path.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (out.dirFd_ < 0) {
      return fail(ErrorCode::NotFound, "cannot open " + path.parent_path().string() + ": " + std::strerror(errno));
    }
    text = "/proc/self/fd/" + std::to_string(out.dirFd_) + "/" + path.filename().string();
    if (text.size() >= sizeof out.address_.sun_path) {
      return fail(ErrorCode::InvalidArgument, "socket name too long for a unix socket: " + path.string());
    }
  }
  std::memcpy(out.address_.sun_path, text.c_str(), text.size() + 1);
  return out;
}

UnixSocketAddress::UnixSocketAddress(UnixSocketAddress&& other) noexcept
    : address_(other.address_), dirFd_(std::exchange(other.dirFd_, -1)) {}

UnixSocketAddress::~UnixSocketAddress() {
  if (dirFd_ >= 0) ::close(dirFd_);
}

}  // namespace bai::core
