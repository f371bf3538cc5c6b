// JSON for fabric's executables: nlohmann-json (Debian's nlohmann-json3-dev) with the settings
// every tool and report shares, so that no executable writes JSON by hand.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace fabric::support {

/// A JSON document whose objects keep their keys in insertion order, so output reads in the
/// order the code states it (and diffs between runs stay small).
using json = nlohmann::ordered_json;

/// `doc` as compact JSON text (no spaces, no newline). Strings are written as UTF-8; a byte that
/// is not well-formed UTF-8 (journal payloads and service names are arbitrary bytes) becomes
/// U+FFFD instead of making the document invalid or throwing.
inline std::string to_text(const json& doc) {
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace fabric::support
