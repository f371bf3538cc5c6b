// The workloads behind `fabric-perf journal`: fabric::journal appends, single appends and replay,
// each beside the same work done on raw LMDB (<lmdb.h> directly, no fabric) in a directory of its
// own on the same filesystem. journal_bench.cpp turns their outcomes into runs.
#pragma once

#include "harness/histogram.hpp"

#include <fabric/journal.hpp>
#include <fabric_support/endpoint.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

namespace fabric::perf::journal_bench {

/// The stream every workload appends to and replays.
inline constexpr std::string_view stream_name = "bench";

std::string_view to_string(durability mode) noexcept;

/// A directory made under a base and removed with everything in it on destruction, so an
/// interrupted workload (an exception) leaves nothing behind either.
using support::temp_dir;

/// $TMPDIR, or /tmp when it is unset or empty.
std::filesystem::path default_base_dir();

/// A map size that holds `records` records of `size` bytes with room for LMDB's copy-on-write
/// pages, so that neither side grows its map in the middle of a measurement.
std::size_t map_size_for(std::size_t size, std::uint64_t records);

/// Appends from `producers` threads into one stream.
struct append_spec {
  durability mode = durability::sync;
  int producers = 1;
  std::size_t size = 256;
  std::uint64_t count = 0;          ///< measured appends, over all producers
  std::size_t window = 4096;        ///< appends each producer keeps outstanding (records)
  /// Records per call: 1 appends one at a time; more uses journal::append_batch, one completion
  /// per batch (at most `window` and the journal's max_batch).
  std::size_t batch = 1;
  std::chrono::milliseconds sync_interval{10};
  std::size_t map_size = 0;
};

struct append_outcome {
  double seconds = 0.0;             ///< first append to last completion
  std::uint64_t records = 0;
  std::uint64_t commits = 0;        ///< write transactions committed for those records
  std::uint64_t syncs = 0;          ///< explicit fsyncs (periodic mode)
  std::size_t map_size = 0;         ///< the map size at the end
  /// Append to completion, ns (empty where not measured). fabric_append samples every 16th
  /// append of each producer; the single-append workloads time every one.
  histogram latency;

  double rate() const noexcept { return seconds > 0.0 ? static_cast<double>(records) / seconds : 0.0; }
  double avg_batch() const noexcept {
    return commits > 0 ? static_cast<double>(records) / static_cast<double>(commits) : 0.0;
  }
};

/// fabric::journal in `dir`: each producer appends count / producers records with callbacks,
/// keeping up to `window` records outstanding, `batch` records per call. Throws on any failed
/// append.
append_outcome fabric_append(const std::filesystem::path& dir, const append_spec& spec);

/// Raw LMDB in `dir`, one thread: the same records in the journal's format, committed in exactly
/// `commits` transactions of (as near as integers allow) equal size, with the journal's
/// environment flags for `spec.mode`; periodic mode fsyncs every `spec.sync_interval`.
append_outcome raw_append(const std::filesystem::path& dir, const append_spec& spec,
                          std::uint64_t commits);

/// `count` appends in sync mode, each waited for before the next (append_wait); latency per append.
append_outcome fabric_append_one(const std::filesystem::path& dir, std::size_t size,
                                 std::uint64_t count, std::size_t map_size);
/// `count` raw LMDB transactions of one record each, fsynced by their commit.
append_outcome raw_append_one(const std::filesystem::path& dir, std::size_t size,
                              std::uint64_t count, std::size_t map_size);

struct replay_outcome {
  double seconds = 0.0;
  std::uint64_t records = 0;
  double rate() const noexcept { return seconds > 0.0 ? static_cast<double>(records) / seconds : 0.0; }
};

/// Writes `count` records of `size` bytes into a journal in `dir` (durability none), for replay.
/// Returns the number of records the stream then holds.
std::uint64_t fill_for_replay(const std::filesystem::path& dir, std::size_t size,
                              std::uint64_t count, std::size_t map_size);

/// Opens the journal in `dir` and times journal::replay of the whole stream (opening excluded).
replay_outcome fabric_replay(const std::filesystem::path& dir, std::uint64_t expected);
/// Opens the same environment with raw LMDB and times one cursor walk (MDB_FIRST, MDB_NEXT) over
/// the database of `stream`, checking each record's CRC-32C as the journal does.
replay_outcome raw_replay(const std::filesystem::path& dir, std::size_t map_size,
                          std::uint64_t expected, std::string_view stream = stream_name);

}  // namespace fabric::perf::journal_bench
