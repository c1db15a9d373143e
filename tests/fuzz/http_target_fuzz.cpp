// What the HTTP server makes of a request target and an address (daemon/http_server):
// the query's percent-decoding into its map, urlDecode on its own, and host:port.
#include "fuzz_support.hpp"

#include "http_server.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(bai::fuzz::textOf(data, size));
  const std::string decoded = bai::http::urlDecode(text);
  bai::fuzz::require(decoded.size() <= text.size(), "decoding never grows the text", decoded);
  (void)bai::http::parseQuery(text);
  if (const auto hostPort = bai::http::splitHostPort(text)) {
    bai::fuzz::require(!hostPort->first.empty(), "host:port has a host", text);
  }
  return 0;
}
