// What the daemons' command lines share: CLI11 validators that turn a duration ("250ms", "2.5s",
// "2m" or a bare number of milliseconds) into whole milliseconds and a log level's name into its
// number, so that range checks apply to every spelling. Header-only: only tools include CLI11.
#pragma once

#include <fabric/log.hpp>
#include <fabric_support/daemon.hpp>
#include <fabric_support/duration.hpp>

#include <CLI/CLI.hpp>

#include <string>

namespace fabric::tools {

/// Rewrites a duration to its whole milliseconds, or says why it is not one.
inline CLI::Validator duration_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto d = fabric::support::parse_duration(text);
        if (!d) return "'" + text + "' is not a duration: use 250ms, 2.5s, 2m or a number of ms";
        text = std::to_string(d->count());
        return {};
      },
      "DURATION");
}

/// Rewrites a log level's name to the number CLI11 reads an enum as, or says why it is not one.
inline CLI::Validator log_level_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto parsed = fabric::support::parse_log_level(text);
        if (!parsed) return "'" + text + "' is not a log level: use debug, info, warning, error or off";
        text = std::to_string(static_cast<int>(*parsed));
        return {};
      },
      "LEVEL");
}

}  // namespace fabric::tools
