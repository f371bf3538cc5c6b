// fabric-journal's subcommands, one function each, separate from the command line parsing so
// each reads as what it does to a journal.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fabric::journal_tool {

/// Exit codes, documented in docs/journal-tool.md.
inline constexpr int exit_ok = 0;
inline constexpr int exit_error = 1;    ///< a missing or foreign directory, unknown stream, I/O
inline constexpr int exit_corrupt = 2;  ///< the journal is damaged: a corrupt record, or a damaged file
inline constexpr int exit_usage = 64;   ///< bad arguments (sysexits' EX_USAGE)

/// A failure to report as "fabric-journal: <what>" with exit_error.
class tool_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A journal whose data file is damaged: reported as "fabric-journal: <what>" with exit_corrupt.
class damaged_journal : public tool_error {
 public:
  using tool_error::tool_error;
};

/// Everything the command line can set; each subcommand reads the fields it owns.
struct options {
  bool json = false;
  std::string dir;
  std::string dest;               ///< compact
  std::string stream;             ///< tail, dump
  bool hex = false;               ///< tail, dump: hex even for text payloads
  std::uint64_t lines = 10;       ///< tail -n
  bool follow = false;            ///< tail
  std::optional<std::uint64_t> max_wait_ms;  ///< tail --follow: stop after this long
  std::uint64_t from = 1;         ///< dump
  std::optional<std::uint64_t> count;        ///< dump, dlq list: at most this many
  std::vector<std::uint64_t> ids;            ///< dlq requeue / discard
};

int run_stats(const options& o);
int run_streams(const options& o);
int run_tail(const options& o);
int run_dump(const options& o);
int run_verify(const options& o);
int run_compact(const options& o);
int run_dlq_list(const options& o);
int run_dlq_requeue(const options& o);
int run_dlq_discard(const options& o);
int run_channels(const options& o);
int run_channel_reset(const options& o);

}  // namespace fabric::journal_tool
