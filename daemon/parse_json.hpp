// How the daemons read JSON they did not write: depth and numbers bounded
// (sdk/internal/bounded_json.hpp), errors as values.
#pragma once

#include <bai/result.hpp>

#include "bounded_json.hpp"

#include <string_view>

namespace bai {

// The document, or InvalidArgument saying why it was refused ("JSON nested deeper than
// 64 levels", "resources.cpu: the number ... cannot be held exactly", "malformed JSON: ...").
inline Result<nlohmann::json> parseJson(std::string_view text) {
  internal::BoundedJson parsed = internal::parseBoundedJson(text);
  if (!parsed) return fail(ErrorCode::InvalidArgument, std::move(parsed.error));
  return std::move(parsed.document);
}

}  // namespace bai
