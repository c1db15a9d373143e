// The container engine's readers on any bytes: the output demultiplexer and the pull
// progress reader give the same output and the same verdict whether the stream comes
// whole or in pieces, never pass on more bytes than came in; the JSON answer readers
// refuse or read any document without throwing. The first byte picks the piece size.
#include "fuzz_support.hpp"

#include "parse_json.hpp"
#include "runtime/engine_replies.hpp"
#include "runtime/engine_streams.hpp"

#include <algorithm>
#include <string>

namespace {

struct Demuxed {
  std::string out;
  std::string err;
  bool ok = true;
};

Demuxed demux(std::string_view stream, std::size_t piece) {
  Demuxed result;
  bai::core::OutputDemuxer demuxer(64);  // small frames, so that the bound is reached often
  const bai::core::OutputSink sink = [&result](int which, std::string_view bytes) {
    bai::fuzz::require(which == 1 || which == 2, "only stdout and stderr reach the sink");
    (which == 2 ? result.err : result.out).append(bytes);
  };
  for (std::size_t at = 0; at < stream.size() && result.ok; at += piece) {
    result.ok = demuxer.feed(stream.substr(at, piece), sink).ok();
  }
  if (result.ok) result.ok = demuxer.finish().ok();
  return result;
}

bool pull(std::string_view stream, std::size_t piece) {
  bai::core::PullProgressReader reader;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    if (!reader.feed(stream.substr(at, piece))) return false;
  }
  return reader.finish().ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 16;
  const std::string_view text = bai::fuzz::textOf(data + 1, size - 1);

  const Demuxed whole = demux(text, text.size() + 1);
  const Demuxed pieces = demux(text, piece);
  bai::fuzz::require(whole.ok == pieces.ok, "the demultiplexer's verdict does not depend on the pieces");
  if (whole.ok) {
    bai::fuzz::require(whole.out == pieces.out && whole.err == pieces.err, "the same output whatever the pieces");
  }
  bai::fuzz::require(whole.out.size() + whole.err.size() <= text.size(), "no more payload than input");
  bai::fuzz::require(pull(text, text.size() + 1) == pull(text, piece), "the pull reader's verdict does not depend on the pieces");

  (void)bai::core::rfc3339Millis(text);
  (void)bai::core::readPodmanWait(text);
  (void)bai::core::engineErrorMessage(text);
  (void)bai::core::engineErrorCode(500, text);
  auto parsed = bai::parseJson(text);
  if (parsed) {
    (void)bai::core::readEngineVersion(*parsed, "");
    (void)bai::core::readImageList(*parsed);
    (void)bai::core::readImageInspect(*parsed);
    (void)bai::core::readCreatedId(*parsed);
    (void)bai::core::readContainerInspect(*parsed);
    (void)bai::core::readContainerList(*parsed);
    (void)bai::core::readDockerWait(*parsed);
    (void)bai::core::readContainerTty(*parsed);
    (void)bai::core::readExecInspect(*parsed);
  }
  return 0;
}
