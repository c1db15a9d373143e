#include <bai/image_reference.hpp>

#include <algorithm>
#include <array>

namespace bai::protocol {
namespace {

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool isAlnum(char c) { return isLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

// A path component: alphanumeric runs joined by '.', '_', '__' or one or more '-'.
bool isPathComponent(std::string_view part) {
  if (part.empty() || !isLowerAlnum(part.front()) || !isLowerAlnum(part.back())) return false;
  for (std::size_t i = 0; i < part.size();) {
    if (isLowerAlnum(part[i])) {
      ++i;
      continue;
    }
    std::size_t run = i;
    while (run < part.size() && !isLowerAlnum(part[run])) ++run;
    const std::string_view separator = part.substr(i, run - i);
    const bool dashes = separator.find_first_not_of('-') == std::string_view::npos;
    if (!(separator == "." || separator == "_" || separator == "__" || dashes)) return false;
    i = run;
  }
  return true;
}

// A registry host: dot-separated labels of letters, digits and inner '-', with an
// optional :port.
bool isRegistry(std::string_view host) {
  const auto colon = host.find(':');
  std::string_view name = host.substr(0, colon);
  if (name.empty()) return false;
  for (std::size_t start = 0; start <= name.size();) {
    const auto dot = std::min(name.find('.', start), name.size());
    const std::string_view label = name.substr(start, dot - start);
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!isAlnum(c) && c != '-') return false;
    }
    start = dot + 1;
  }
  if (colon == std::string_view::npos) return true;
  std::string_view port = host.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool isTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128 || tag.front() == '.' || tag.front() == '-') return false;
  for (char c : tag) {
    if (!isAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

bool isDigest(std::string_view digest) {
  constexpr std::string_view prefix = "sha256:";
  if (digest.substr(0, prefix.size()) != prefix || digest.size() != prefix.size() + 64) return false;
  for (char c : digest.substr(prefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The first component names a registry when it has a '.' or ':' or is "localhost".
bool namesRegistry(std::string_view first) {
  return first == "localhost" || first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos;
}

std::string_view dropDefaultPrefix(std::string_view reference) {
  static constexpr std::array<std::string_view, 3> kDefaults{"docker.io/library/", "docker.io/", "localhost/"};
  for (std::string_view prefix : kDefaults) {
    if (reference.substr(0, prefix.size()) == prefix) return reference.substr(prefix.size());
  }
  return reference;
}

// '*' matches any run of characters, everything else itself.
bool globMatches(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace

bool isImageReference(std::string_view reference) {
  if (reference.empty() || reference.size() > 255) return false;
  std::string_view rest = reference;
  if (const auto at = rest.find('@'); at != std::string_view::npos) {
    if (!isDigest(rest.substr(at + 1))) return false;
    rest = rest.substr(0, at);
  }
  // A tag follows the last ':' after the last '/'.
  const auto slash = rest.rfind('/');
  const auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    if (!isTag(rest.substr(colon + 1))) return false;
    rest = rest.substr(0, colon);
  }
  std::size_t start = 0;
  bool first = true;
  while (true) {
    const auto end = rest.find('/', start);
    const std::string_view part = rest.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    const bool registry = first && end != std::string_view::npos && namesRegistry(part);
    if (registry ? !isRegistry(part) : !isPathComponent(part)) return false;
    if (end == std::string_view::npos) return true;
    start = end + 1;
    first = false;
  }
}

std::string imageKey(std::string_view reference) {
  std::string key(dropDefaultPrefix(reference));
  const auto slash = key.rfind('/');
  const auto colon = key.rfind(':');
  const bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  if (!tagged && key.find('@') == std::string::npos) key += ":latest";
  return key;
}

bool imageAllowed(std::string_view reference, std::string_view pattern) {
  return globMatches(dropDefaultPrefix(pattern), imageKey(reference));
}

}  // namespace bai::protocol
