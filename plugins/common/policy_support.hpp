// What every bundled policy shares: the adapter that turns a small C++ class into the C
// ABI of <bai/scheduler.h>, catching every exception at the boundary, and option parsing.
// Uses the SDK header and nlohmann_json only; never libbai or manager code.
//
// A sequencer class:  explicit Fifo(const char* optionsJson);  (throws on bad options)
//                     void order(const bai_pending_view& view, std::span<std::uint32_t> order);
//   `order` arrives holding 0..n-1 (the view's listing order); the class rearranges it.
// A selector class:   explicit Dispersed(const char* optionsJson);
//                     std::uint32_t select(const bai_session_view&, const bai_candidate_view&);
// then one BAI_SEQUENCER_POLICY or BAI_SELECTOR_POLICY line exports it. One object is one
// instance; the manager serialises calls into it, so members need no locks.
#pragma once

#include <bai/scheduler.h>

#include "bounded_json.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <new>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace bai::policy {

// What order/select return besides 0; the manager logs the number and falls back.
inline constexpr int kBadArguments = 1;  // a null pointer or a view older than ABI 1.0
inline constexpr int kException = 2;     // a std::exception reached the boundary
inline constexpr int kUnknownException = 3;

// Parses a group's options: a JSON object whose keys are all in `known`. Throws
// std::invalid_argument naming the problem; `create` turns that into its error text.
inline nlohmann::json parseOptions(const char* text, std::initializer_list<std::string_view> known) {
  internal::BoundedJson parsed = internal::parseBoundedJson(text != nullptr ? text : "{}");
  if (!parsed) throw std::invalid_argument("options are not valid JSON");
  nlohmann::json& options = parsed.document;
  if (!options.is_object()) throw std::invalid_argument("options must be a JSON object");
  for (const auto& item : options.items()) {
    bool isKnown = false;
    for (std::string_view key : known) isKnown = isKnown || item.key() == key;
    if (!isKnown) throw std::invalid_argument("unknown option '" + item.key() + "'");
  }
  return std::move(parsed.document);
}

inline bool boolOption(const nlohmann::json& options, const char* key, bool fallback) {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  if (!it->is_boolean()) throw std::invalid_argument(std::string("option '") + key + "' must be true or false");
  return it->get<bool>();
}

// Byte order of agent ids, the tie-break every bundled selector uses.
inline bool idBefore(const char* a, const char* b) { return std::strcmp(a, b) < 0; }

// Device slot kinds ("cuda.device", "acme.device": names with a dot) an agent offers and
// nobody uses there, that the session does not ask for. Placing a CPU-only session there
// would tie up an accelerator node for nothing, so selectors weigh this first.
inline std::uint32_t spareDeviceKinds(const bai_session_view& session, const bai_candidate_view& view, std::uint32_t agent) {
  std::uint32_t spare = 0;
  for (std::uint32_t slot = 0; slot < view.slot_count; ++slot) {
    const double capacity = view.capacity[slot][agent];
    spare += session.requested[slot] == 0 && capacity > 0 && view.remaining[slot][agent] == capacity &&
             std::strchr(view.slot_names[slot], '.') != nullptr;
  }
  return spare;
}

// -1, 0, 1 as agent a has less, equal or more remaining than b: the slots the session
// asks for decide first (in the view's order), then the others.
inline int compareRemaining(const bai_session_view& session, const bai_candidate_view& view, std::uint32_t a,
                            std::uint32_t b) {
  for (const bool requested : {true, false}) {
    for (std::uint32_t slot = 0; slot < view.slot_count; ++slot) {
      if ((session.requested[slot] > 0) != requested) continue;
      const double x = view.remaining[slot][a], y = view.remaining[slot][b];
      if (x != y) return x < y ? -1 : 1;
    }
  }
  return 0;
}

namespace detail {

inline void writeError(char* error, std::size_t size, const char* message) {
  if (error == nullptr || size == 0) return;
  std::strncpy(error, message, size - 1);
  error[size - 1] = '\0';
}

template <class Policy>
Policy& self(bai_policy* policy) {
  return *reinterpret_cast<Policy*>(policy);
}

// Runs `body`, mapping exceptions to status codes: nothing C++ crosses the ABI.
template <class Body>
int guarded(Body&& body) noexcept {
  try {
    body();
    return 0;
  } catch (const std::exception&) {
    return kException;
  } catch (...) {
    return kUnknownException;
  }
}

template <class Policy>
struct Adapter {
  static bai_policy* create(const char* options, char* error, std::size_t errorSize) noexcept {
    try {
      return reinterpret_cast<bai_policy*>(new Policy(options != nullptr ? options : "{}"));
    } catch (const std::exception& e) {
      writeError(error, errorSize, e.what());
    } catch (...) {
      writeError(error, errorSize, "unknown exception");
    }
    return nullptr;
  }
  static void destroy(bai_policy* policy) noexcept { delete reinterpret_cast<Policy*>(policy); }

  static int order(bai_policy* policy, const bai_pending_view* view, std::uint32_t* out) noexcept {
    if (policy == nullptr || view == nullptr || out == nullptr || view->struct_size < sizeof(bai_pending_view)) {
      return kBadArguments;
    }
    return guarded([&] {
      std::span<std::uint32_t> order(out, view->session_count);
      std::iota(order.begin(), order.end(), 0u);
      self<Policy>(policy).order(*view, order);
    });
  }

  static int select(bai_policy* policy, const bai_session_view* session, const bai_candidate_view* view,
                    std::uint32_t* chosen) noexcept {
    if (policy == nullptr || session == nullptr || view == nullptr || chosen == nullptr ||
        session->struct_size < sizeof(bai_session_view) ||
        // The 1.0 members; a policy reads later ones only where struct_size covers them.
        view->struct_size < offsetof(bai_candidate_view, slot_is_fraction) ||
        view->agent_count == 0) {
      return kBadArguments;
    }
    return guarded([&] { *chosen = self<Policy>(policy).select(*session, *view); });
  }

  static constexpr bai_policy_vtable sequencer = {
      BAI_POLICY_ABI_MAJOR, BAI_POLICY_ABI_MINOR, sizeof(bai_policy_vtable), &create, &destroy, &order, nullptr, 0};
  template <std::uint32_t Preference>
  static constexpr bai_policy_vtable selector = {
      BAI_POLICY_ABI_MAJOR, BAI_POLICY_ABI_MINOR, sizeof(bai_policy_vtable), &create, &destroy, nullptr, &select,
      Preference};
};

}  // namespace detail
}  // namespace bai::policy

#ifndef BAI_POLICY_VERSION
#define BAI_POLICY_VERSION "0.0.0"
#endif

// Exports the identity record and the entry point of a sequencer class.
#define BAI_SEQUENCER_POLICY(Class, name, description)                                                     \
  extern "C" BAI_POLICY_EXPORT const bai_policy_identity bai_policy_info = {                             \
      BAI_POLICY_ABI_MAJOR, BAI_POLICY_ABI_MINOR, BAI_POLICY_SEQUENCER, name, BAI_POLICY_VERSION, description}; \
  extern "C" BAI_POLICY_EXPORT const bai_policy_vtable* bai_policy_entry(void) {                         \
    return &::bai::policy::detail::Adapter<Class>::sequencer;                                              \
  }

// Exports the identity record and the entry point of a selector class; `preference` is BAI_PREFER_*.
#define BAI_SELECTOR_POLICY(Class, preference, name, description)                                          \
  extern "C" BAI_POLICY_EXPORT const bai_policy_identity bai_policy_info = {                             \
      BAI_POLICY_ABI_MAJOR, BAI_POLICY_ABI_MINOR, BAI_POLICY_SELECTOR, name, BAI_POLICY_VERSION, description}; \
  extern "C" BAI_POLICY_EXPORT const bai_policy_vtable* bai_policy_entry(void) {                         \
    return &::bai::policy::detail::Adapter<Class>::template selector<preference>;                          \
  }
