// Durations on command lines and in log lines: "250ms", "2.5s", "2m", or a bare number of
// milliseconds, read and written in one place for every fabric daemon and tool.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace fabric::support {

/// Reads a duration: a non-negative decimal number (with an optional fraction) followed by "ms",
/// "s" or "m", or by nothing for milliseconds; spaces around the number and the unit are
/// allowed. A fraction of a millisecond is dropped ("1.5ms" is 1 ms). Returns nullopt for
/// anything else: an empty text, a sign, an unknown unit ("10parsecs"), a second number, more
/// than 18 digits before or after the point, or a value too large for std::chrono::milliseconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// Writes `d` in the largest of m, s and ms that states it exactly: 120000 ms is "2m", 2500 ms is
/// "2500ms", 0 is "0ms" (a negative `d` keeps its sign: "-2s"). parse_duration reads every
/// result for a non-negative `d` back to `d`.
std::string format_duration(std::chrono::milliseconds d);

}  // namespace fabric::support
