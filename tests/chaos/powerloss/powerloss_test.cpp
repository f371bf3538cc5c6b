// Power-loss tests of fabric::journal and of the reliable channels over it: under durability sync
// and periodic, no crash of the machine loses an append the journal had completed, nor a message
// a reliable sender had accepted or a receiver had acknowledged; under none, some crash does (so
// the harness is known to catch loss). The model and how to run the long tier: README.md beside
// this file.
//
// Each test runs the journal workload under the shim (which logs every write and sync to data.mdb
// and each completion mark, in order), then for many crash points rebuilds images of what the disk
// could hold after a power cut there, and checks each image in a child process: the journal
// opens, every append and cursor transaction completed before the crash point is there with its
// content, every stream is a gapless run of correct records, verify() agrees, and the journal
// takes new appends. The channel tests run a sender and a receiver in one process, each over its
// own journal, and check both journals of each image together (see check_channel_image).
//
// Environment:
//   FABRIC_POWERLOSS_SEED      seed of the crash points and page subsets (printed by every run)
//   FABRIC_POWERLOSS_POINTS    crash points per workload run (default 170; soak 1500)
//   FABRIC_POWERLOSS_VARIANTS  random images per crash point (default 3; soak 4)
//   FABRIC_POWERLOSS_KEEP      a directory to copy the images that fail into, for inspection
#include <fabric/journal.hpp>

#include "chaos/powerloss/channel_workload.hpp"
#include "chaos/powerloss/crash_model.hpp"
#include "chaos/powerloss/journal_workload.hpp"
#include "reliability/frc_receiver.hpp"
#include "reliability/frc_sender.hpp"
#include "support/process.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace pl = fabric::testing::powerloss;
namespace ch = fabric::testing::powerloss::channel;
using fabric::durability;
using fabric::journal;
using fabric::journal_options;
using fabric::journal_txn;
using fabric::testing::temp_dir;
using namespace std::chrono_literals;

constexpr std::uint64_t default_seed = 0x706f7765726c6f73;  // "powerlos"
constexpr auto workload_bound = 120s;
constexpr auto check_bound = 20s;
constexpr std::size_t failures_shown = 10;

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  return std::strtoull(text, nullptr, 0);
}

const char* mode_name(durability mode) {
  switch (mode) {
    case durability::sync: return "sync";
    case durability::periodic: return "periodic";
    case durability::none: return "none";
  }
  return "?";
}

/// One workload run and how hard to crash it.
struct run_settings {
  durability mode = durability::sync;
  unsigned streams = 3;
  std::uint64_t records = 150;
  unsigned interval_ms = 5;
  unsigned in_flight = 16;
  unsigned batch = 1;  // records per append (append_batch above 1)
  std::size_t points = 170;
  unsigned variants = 3;
};

/// Runs `program` under the shim, tracking every data.mdb, and returns its event log (kept in
/// `scratch`). `work` is the directory it works in, removed before and after.
std::vector<pl::event> record_under_shim(const fs::path& scratch, const fs::path& work,
                                         const std::vector<std::string>& program) {
  const fs::path log = scratch / "events.log";
  fs::remove(log);
  fs::remove_all(work);
  std::string asan = "ASAN_OPTIONS=verify_asan_link_order=0";  // the shim is preloaded before ASan
  if (const char* given = std::getenv("ASAN_OPTIONS")) asan += std::string(":") + given;
  std::vector<std::string> words{"/usr/bin/env", std::string("LD_PRELOAD=") + FABRIC_TEST_POWERLOSS_SHIM,
                                 "FABRIC_POWERLOSS_LOG=" + log.string(), "FABRIC_POWERLOSS_FILES=data.mdb", asan};
  words.insert(words.end(), program.begin(), program.end());
  fabric::testing::child_process workload(words);
  const int rc = workload.finish(workload_bound);
  EXPECT_EQ(rc, 0) << "the workload failed: " << workload.err;
  if (rc != 0) return {};
  auto events = pl::read_log(log);
  fs::remove(log);
  fs::remove_all(work);
  return events;
}

/// Runs the journal workload under the shim in `scratch` and returns its event log.
std::vector<pl::event> record_workload(const fs::path& scratch, const run_settings& s) {
  const fs::path dir = scratch / "journal";
  return record_under_shim(scratch, dir,
                           {FABRIC_TEST_POWERLOSS_JOURNAL, "--dir", dir.string(), "--mode", mode_name(s.mode), "--streams",
                            std::to_string(s.streams), "--records", std::to_string(s.records), "--interval-ms",
                            std::to_string(s.interval_ms), "--in-flight", std::to_string(s.in_flight), "--batch",
                            std::to_string(s.batch)});
}

/// What the workload had been told was durable by some point of its log.
struct expectations {
  bool opened = false;                            // journal::open() had returned
  std::map<std::string, std::uint64_t> appended;  // stream -> highest completed seq
  std::map<std::string, std::uint64_t> cursors;   // cursor -> highest completed value
};

/// Checks the journal in `dir` against `want`. Runs in a child process: it may crash.
/// Returns "ok", or a line starting "lost:" or "damaged:".
/// With `batch` above 1 the workload appended whole batches of that many records, so a stream
/// must hold a whole number of them: a crash keeps all of a batch or none of it.
std::string check_image(const fs::path& dir, const expectations& want, unsigned streams, unsigned batch = 1) {
  // No journal: open() must create a fresh one, which is right only if nothing was promised yet.
  if (!fs::exists(dir / "data.mdb")) {
    if (want.opened) return "lost: the journal has no data.mdb, but its open() had returned";
    if (!want.appended.empty() || !want.cursors.empty())
      return "lost: the journal has no data.mdb, but appends or transactions had completed";
  }
  journal_options options;
  options.mode = durability::none;  // the check's own appends need no fsync
  std::optional<journal> opened;
  try {
    opened.emplace(journal::open(dir, options));
  } catch (const std::exception& e) {
    return std::string("damaged: the journal does not open: ") + e.what();
  }
  journal& j = *opened;
  std::uint64_t total = 0;
  std::map<std::string, std::uint64_t> held;
  for (unsigned index = 0; index < streams; ++index) {
    const std::string stream = pl::workload_stream(index);
    std::uint64_t next = 1;
    std::string problem;
    auto delivered = j.replay(
        stream, 1,
        [&](const fabric::journal_record& r) {
          if (r.seq != next) problem = "record " + std::to_string(next) + " is missing, " + std::to_string(r.seq) + " follows";
          else if (r.payload != pl::workload_payload(index, r.seq)) problem = "record " + std::to_string(r.seq) + " has the wrong payload";
          if (!problem.empty()) return false;
          ++next;
          return true;
        },
        [&](const fabric::journal_corruption& c) { problem = "record " + std::to_string(c.seq) + " is corrupt: " + c.what; });
    if (!problem.empty()) return "damaged: " + stream + ": " + problem;
    if (!delivered) return "damaged: " + stream + ": replay failed: " + delivered.error().message();
    held[stream] = next - 1;
    total += next - 1;
    if ((next - 1) % batch != 0)
      return "damaged: " + stream + " holds records 1-" + std::to_string(next - 1) + ": part of a batch of " +
             std::to_string(batch);
    const auto promised = want.appended.find(stream);
    if (promised != want.appended.end() && next - 1 < promised->second)
      return "lost: " + stream + " holds records 1-" + std::to_string(next - 1) + " but appends up to " +
             std::to_string(promised->second) + " had completed";
  }
  for (const auto& [name, value] : want.cursors) {
    const auto read = j.cursor(name);
    if (!read) return "unreadable: cursor " + name + ": " + read.error().message();
    const auto& at = *read;
    if (!at || *at < value)
      return "lost: cursor " + name + " is " + (at ? std::to_string(*at) : std::string("unset")) +
             " but a transaction setting it to " + std::to_string(value) + " had completed";
  }
  const auto report = j.verify();
  if (!report.corruptions.empty())
    return "damaged: verify found " + std::to_string(report.corruptions.size()) + " corrupt records, the first " +
           report.corruptions[0].stream + " " + std::to_string(report.corruptions[0].seq) + ": " +
           report.corruptions[0].what;
  if (report.records != total)
    return "damaged: verify checked " + std::to_string(report.records) + " records, the streams hold " + std::to_string(total);
  for (const auto& [stream, last] : held) {
    auto seq = j.append_wait(stream, "after the crash");
    if (!seq) return "damaged: an append to " + stream + " after recovery failed: " + seq.error().message();
    if (*seq != last + 1) return "damaged: an append to " + stream + " after recovery got seq " + std::to_string(*seq);
    auto back = j.read(stream, *seq);
    if (!back || back->records.size() != 1 || back->records[0].payload != "after the crash")
      return "damaged: an append to " + stream + " after recovery does not read back";
  }
  return "ok";
}

/// What crashing one workload run found.
struct outcome {
  std::size_t points = 0;         // crash points checked
  std::size_t images = 0;         // images checked
  std::size_t failed_points = 0;  // crash points with at least one failing image
  std::size_t lost = 0;           // failing images that lost a completed append or transaction
  std::size_t damaged = 0;        // failing images that would not open, or held bad records
  std::size_t without_journal = 0;  // images with no data.mdb: the journal's creation cut short
  std::vector<std::string> failures;  // the first few, with how to find them again
  /// Passing images whose check noted something ("ok: <note>"), by note: what a run covered.
  std::map<std::string, std::size_t> notes;
};

/// Applies the marks of events [from, to] to `want`, checking that each stream's completions
/// come in order and carry the hash of the payload the checker expects.
void take_marks(const std::vector<pl::event>& events, std::size_t from, std::size_t to, expectations& want) {
  for (std::size_t i = from; i <= to && i < events.size(); ++i) {
    if (events[i].type != pl::event_type::mark) continue;
    const auto m = pl::parse_mark(events[i].data);
    ASSERT_TRUE(m) << "a malformed mark: " << events[i].data;
    if (m->kind == 'o') {
      want.opened = true;
      continue;
    }
    if (m->kind == 'c') {
      auto& value = want.cursors[m->name];
      value = std::max(value, m->value);
      continue;
    }
    auto& last = want.appended[m->name];
    ASSERT_EQ(m->value, last + 1) << m->name << " completed out of order";
    const unsigned index = static_cast<unsigned>(std::stoul(m->name.substr(1)));
    ASSERT_EQ(m->hash, pl::payload_hash(pl::workload_payload(index, m->value))) << "a mark with a wrong hash";
    last = m->value;
  }
}

/// The crash points to check: every one before event `opened` (inside the creation of the
/// journals: there are few, and a random draw would miss most) and `points` drawn from the rest.
std::vector<std::size_t> pick_crash_points(const std::vector<pl::event>& events, std::size_t opened, std::size_t points,
                                           std::uint64_t seed) {
  auto candidates = pl::crash_points(events);
  const auto later = std::find_if(candidates.begin(), candidates.end(), [opened](std::size_t k) { return k >= opened; });
  std::vector<std::size_t> creation(candidates.begin(), later);
  candidates.erase(candidates.begin(), later);
  std::mt19937_64 choose(seed);
  if (candidates.size() > points) {
    std::shuffle(candidates.begin(), candidates.end(), choose);
    candidates.resize(points);
  }
  candidates.insert(candidates.end(), creation.begin(), creation.end());
  std::sort(candidates.begin(), candidates.end());
  return candidates;
}

/// Where the mark `text` is in `events` (events.size() when it is not).
std::size_t find_mark(const std::vector<pl::event>& events, std::string_view text) {
  const auto at = std::find_if(events.begin(), events.end(), [text](const pl::event& e) {
    return e.type == pl::event_type::mark && e.data == text;
  });
  return static_cast<std::size_t>(at - events.begin());
}

/// What a workload's images are checked against, and how.
struct image_checks {
  /// Takes in the marks of events [from, to]: what the workload had promised by `to`.
  std::function<void(std::size_t from, std::size_t to)> take_marks;
  /// Checks the image in a directory against the marks taken so far; runs in a child process.
  /// Returns "ok" or "ok: <note>" (a pass worth counting), or a line starting "lost:" or
  /// "damaged:".
  std::function<std::string(const fs::path& image)> check;
  /// Whether an image lacks a journal (a creation cut short), for the counts.
  std::function<bool(const fs::path& image)> without_journal;
};

/// Rebuilds `variants` images at each of `points` of `events` (with `root` the directory the
/// workload worked in) and checks each in a child process.
outcome crash_images(const std::vector<pl::event>& events, const std::vector<std::size_t>& points, unsigned variants_per_point,
                     std::uint64_t seed, const fs::path& scratch, const fs::path& root, const std::string& label,
                     const image_checks& checks) {
  outcome out;
  const char* keep = std::getenv("FABRIC_POWERLOSS_KEEP");
  pl::disk_model disk(events);
  std::size_t marks_from = 0;
  const fs::path image_dir = scratch / "image";
  for (const std::size_t k : points) {
    disk.advance_to(k);
    checks.take_marks(marks_from, k);
    marks_from = k + 1;
    ++out.points;
    // Nothing unsynced: every image would be the same.
    const unsigned variants = disk.pending_pieces() == 0 ? 1 : variants_per_point;
    bool point_failed = false;
    for (unsigned v = 0; v < variants; ++v) {
      // Variant 0 keeps nothing unsynced (the classic crash); the others keep a random share.
      const std::uint64_t image_seed = seed ^ (std::uint64_t{k} << 8) ^ v;
      std::mt19937_64 rng(image_seed);
      const double land = v == 0 ? 0.0 : std::uniform_real_distribution<double>(0.0, 1.0)(rng);
      fs::remove_all(image_dir);
      fs::create_directories(image_dir);
      pl::write_image(disk.image(land, rng), root, image_dir);
      if (checks.without_journal(image_dir)) ++out.without_journal;
      const std::string verdict = pl::run_isolated([&] { return checks.check(image_dir); }, check_bound);
      ++out.images;
      if (verdict == "ok") continue;
      if (verdict.rfind("ok: ", 0) == 0) {
        ++out.notes[verdict.substr(4, verdict.find(" [stderr: ") - 4)];
        continue;
      }
      point_failed = true;
      (verdict.rfind("lost:", 0) == 0 ? out.lost : out.damaged) += 1;
      if (out.failures.size() < failures_shown) {
        std::ostringstream line;
        line << "crash after event " << k << " of " << events.size() << ", variant " << v << " (land " << land
             << ", image seed " << image_seed << "): " << verdict;
        out.failures.push_back(line.str());
      }
      if (keep != nullptr && *keep != '\0') {
        const fs::path kept = fs::path(keep) / (label + "-" + std::to_string(k) + "-" + std::to_string(v));
        fs::create_directories(kept);
        fs::copy(image_dir, kept, fs::copy_options::overwrite_existing | fs::copy_options::recursive);
      }
    }
    if (point_failed) ++out.failed_points;
  }
  fs::remove_all(image_dir);
  return out;
}

outcome crash_and_check(const std::vector<pl::event>& events, const run_settings& s, std::uint64_t seed,
                        const fs::path& scratch, const fs::path& root) {
  const auto points = pick_crash_points(events, find_mark(events, pl::opened_mark), s.points, seed);
  expectations want;
  const image_checks checks{
      .take_marks = [&](std::size_t from, std::size_t to) { take_marks(events, from, to, want); },
      .check = [&](const fs::path& image) { return check_image(image, want, s.streams, s.batch); },
      .without_journal = [](const fs::path& image) { return !fs::exists(image / "data.mdb"); },
  };
  return crash_images(events, points, s.variants, seed, scratch, root, mode_name(s.mode), checks);
}

struct log_summary {
  std::size_t writes = 0, synchronous_writes = 0, syncs = 0, append_marks = 0, cursor_marks = 0;
  std::size_t renames = 0, directory_syncs = 0;
  std::size_t syncs_after_open = 0;  // syncs of data.mdb after open() returned
};

log_summary summarise(const std::vector<pl::event>& events) {
  log_summary s;
  bool opened = false;
  for (const auto& e : events) {
    if (e.type == pl::event_type::sync && opened) ++s.syncs_after_open;
    if (e.type == pl::event_type::mark && e.data == pl::opened_mark) opened = true;
    if (e.type == pl::event_type::write) {
      ++s.writes;
      if ((e.flags & pl::flag_durable) != 0) ++s.synchronous_writes;
    } else if (e.type == pl::event_type::sync) {
      ++s.syncs;
    } else if (e.type == pl::event_type::rename) {
      ++s.renames;
    } else if (e.type == pl::event_type::dir_sync) {
      ++s.directory_syncs;
    } else if (e.type == pl::event_type::mark) {
      if (e.data.rfind("a ", 0) == 0) ++s.append_marks;
      else if (e.data.rfind("c ", 0) == 0) ++s.cursor_marks;
    }
  }
  return s;
}

/// Records the workload under `s` and crashes it; reports what it found on stdout.
outcome run_mode(const run_settings& s) {
  temp_dir scratch;
  const std::uint64_t seed = env_number("FABRIC_POWERLOSS_SEED", default_seed) ^ static_cast<std::uint64_t>(s.mode);
  const auto events = record_workload(scratch.path(), s);
  if (events.empty()) {
    ADD_FAILURE() << "the workload left no event log";
    return {};
  }
  const log_summary log = summarise(events);
  // The whole workload completed, and the log saw the I/O the mode implies.
  EXPECT_EQ(log.append_marks, s.streams * s.records);
  EXPECT_EQ(log.cursor_marks, s.streams * (s.records / 10));
  EXPECT_GT(log.writes, 0u);
  // Creating the journal syncs it in every mode; after that, none never syncs.
  if (s.mode == durability::none) EXPECT_EQ(log.syncs_after_open, 0u) << "durability::none must never sync";
  else EXPECT_GT(log.syncs, 0u);
  // open() built data.mdb aside, renamed it into place and synced the directory: proof the shim
  // follows renames and directory syncs.
  EXPECT_EQ(log.renames, 1u);
  EXPECT_GE(log.directory_syncs, 1u);
  // Only sync writes meta pages through LMDB's O_DSYNC descriptor: proof the shim tracks it.
  if (s.mode == durability::sync) EXPECT_GT(log.synchronous_writes, 0u);
  else EXPECT_EQ(log.synchronous_writes, 0u);

  const outcome out = crash_and_check(events, s, seed, scratch.path(), fs::canonical(scratch.path()) / "journal");
  std::printf("[ powerloss ] %s: %zu events (%zu writes, %zu syncs, %zu marks), %zu crash points, %zu images: "
              "%zu points failed (%zu images lost completed work, %zu damaged; %zu had no data.mdb); seed %llu\n",
              mode_name(s.mode), events.size(), log.writes, log.syncs, log.append_marks + log.cursor_marks, out.points,
              out.images, out.failed_points, out.lost, out.damaged, out.without_journal,
              static_cast<unsigned long long>(env_number("FABRIC_POWERLOSS_SEED", default_seed)));
  for (const auto& f : out.failures) std::printf("[ powerloss ]   %s\n", f.c_str());
  return out;
}

run_settings chaos_settings(durability mode) {
  run_settings s;
  s.mode = mode;
  s.points = env_number("FABRIC_POWERLOSS_POINTS", 170);
  s.variants = static_cast<unsigned>(env_number("FABRIC_POWERLOSS_VARIANTS", 3));
  return s;
}

std::string failures_of(const outcome& out) {
  std::string text;
  for (const auto& f : out.failures) text += "\n  " + f;
  return text;
}

// ---------------------------------------------------------------------------------------------
// The model itself, on hand-written logs.

pl::event write_event(std::uint64_t offset, std::string bytes, bool durable = false) {
  return {pl::event_type::write, static_cast<std::uint16_t>(durable ? pl::flag_durable : 0), 1, offset, std::move(bytes)};
}
pl::event sync_event() { return {pl::event_type::sync, 0, 1, 0, {}}; }
pl::event mark_event(std::string text) { return {pl::event_type::mark, 0, 0, 0, std::move(text)}; }

TEST(PowerLossModelTest, SyncedWritesSurviveAndLaterOnesMayNot) {
  const std::vector<pl::event> events{write_event(0, "old"), sync_event(), write_event(0, "new")};
  pl::disk_model disk(events);
  disk.advance_to(2);
  std::mt19937_64 rng(1);
  EXPECT_EQ(disk.image(0.0, rng).at(1).bytes, "old");
  EXPECT_EQ(disk.image(1.0, rng).at(1).bytes, "new");
  EXPECT_EQ(disk.pending_pieces(), 1u);
}

TEST(PowerLossModelTest, ASynchronousWriteMakesItsWholePageDurable) {
  const std::string page(4096, 'a');
  const std::vector<pl::event> events{write_event(0, page + page), write_event(100, "meta", true)};
  pl::disk_model disk(events);
  disk.advance_to(1);
  std::mt19937_64 rng(1);
  const std::string image = disk.image(0.0, rng).at(1).bytes;
  // The first page went to disk whole, with the unsynced bytes the earlier write put there.
  ASSERT_EQ(image.size(), 4096u);
  EXPECT_EQ(image.substr(0, 100), std::string(100, 'a'));
  EXPECT_EQ(image.substr(100, 4), "meta");
  EXPECT_EQ(image.substr(104), std::string(4096 - 104, 'a'));
}

TEST(PowerLossModelTest, UnsyncedPagesLandIndependentlyAndInOrder) {
  const std::string a(4096, 'a'), b(4096, 'b');
  const std::vector<pl::event> events{write_event(0, a + a), write_event(0, b + b)};
  pl::disk_model disk(events);
  disk.advance_to(1);
  std::mt19937_64 rng(7);
  std::map<std::string, int> seen;  // the first byte of each page, as "xy"
  for (int i = 0; i < 400; ++i) {
    const std::string image = disk.image(0.5, rng).at(1).bytes;
    std::string key;
    key += image.size() > 0 ? image[0] : '-';
    key += image.size() > 4096 ? image[4096] : '-';
    ++seen[key];
  }
  // Each page independently empty, the first write's or the second's; a file shorter than a
  // page's end reads as a missing page.
  for (const char* both : {"ab", "ba", "bb", "aa", "--", "a-", "b-"}) EXPECT_GT(seen[both], 0) << both;
  EXPECT_EQ(disk.pending_pieces(), 4u);
}

TEST(PowerLossModelTest, CrashPointsEndEachRunOfMarks) {
  const std::vector<pl::event> events{write_event(0, "x"), mark_event("a s0 1 0"), mark_event("a s0 2 0"), sync_event(),
                                      mark_event("a s0 3 0")};
  EXPECT_EQ(pl::crash_points(events), (std::vector<std::size_t>{2, 4}));
}

std::string contents(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream whole;
  whole << in.rdbuf();
  return std::move(whole).str();
}

pl::event open_event(std::string path) { return {pl::event_type::open, 0, 1, 0, std::move(path)}; }
pl::event rename_event(std::uint64_t directory, std::string path) {
  return {pl::event_type::rename, 0, 1, directory, std::move(path)};
}
pl::event dir_sync_event(std::uint64_t directory) { return {pl::event_type::dir_sync, 0, 0, directory, {}}; }

TEST(PowerLossModelTest, ARenamedFileIsInPlaceOnlyOnceItsDirectoryIsSynced) {
  const std::vector<pl::event> events{open_event("/j/.creating/data.mdb"), write_event(0, "meta"), sync_event(),
                                      rename_event(1, "/j/data.mdb"), dir_sync_event(2), dir_sync_event(1)};
  pl::disk_model disk(events);
  std::mt19937_64 rng(1);
  disk.advance_to(3);
  // Before the directory's sync the rename may or may not have happened; the file is whole either way.
  EXPECT_EQ(disk.image(0.0, rng).at(1).path, "/j/.creating/data.mdb");
  EXPECT_EQ(disk.image(1.0, rng).at(1).path, "/j/data.mdb");
  EXPECT_EQ(disk.image(1.0, rng).at(1).bytes, "meta");
  disk.advance_to(4);  // a sync of some other directory changes nothing
  EXPECT_EQ(disk.image(0.0, rng).at(1).path, "/j/.creating/data.mdb");
  disk.advance_to(5);
  EXPECT_EQ(disk.image(0.0, rng).at(1).path, "/j/data.mdb");
  EXPECT_EQ(pl::crash_points(events), (std::vector<std::size_t>{0, 1, 2, 3, 4, 5}));
}

// Two journals in one process: each file (and each directory) has its own id, and a sync of one
// promises nothing about the other.
TEST(PowerLossModelTest, TwoFilesAreSyncedAndRenamedApart) {
  const std::vector<pl::event> events{
      {pl::event_type::open, 0, 1, 0, "/w/tx/.creating/data.mdb"},
      {pl::event_type::open, 0, 2, 0, "/w/rx/.creating/data.mdb"},
      {pl::event_type::write, 0, 1, 0, "tx"},
      {pl::event_type::write, 0, 2, 0, "rx"},
      {pl::event_type::sync, 0, 1, 0, {}},
      {pl::event_type::rename, 0, 1, 1, "/w/tx/data.mdb"},
      {pl::event_type::rename, 0, 2, 2, "/w/rx/data.mdb"},
      {pl::event_type::dir_sync, 0, 0, 1, {}},
  };
  pl::disk_model disk(events);
  std::mt19937_64 rng(1);
  disk.advance_to(7);
  const auto kept = disk.image(0.0, rng);
  EXPECT_EQ(kept.at(1).bytes, "tx");
  EXPECT_EQ(kept.at(1).path, "/w/tx/data.mdb");
  EXPECT_EQ(kept.at(2).bytes, "");  // its write was never synced
  EXPECT_EQ(kept.at(2).path, "/w/rx/.creating/data.mdb");  // its directory was never synced
  EXPECT_EQ(disk.pending_pieces(), 1u);
  const auto landed = disk.image(1.0, rng);
  EXPECT_EQ(landed.at(2).bytes, "rx");
  EXPECT_EQ(landed.at(2).path, "/w/rx/data.mdb");
}

TEST(PowerLossModelTest, AnImageIsWrittenAtPathsRelativeToTheProgramsDirectory) {
  temp_dir scratch;
  const pl::file_images image{{1, {"/j/data.mdb", "a"}}, {2, {"/j/.creating/data.mdb", "b"}}};
  pl::write_image(image, "/j", scratch.path());
  EXPECT_EQ(contents(scratch.path() / "data.mdb"), "a");
  EXPECT_EQ(contents(scratch.path() / ".creating" / "data.mdb"), "b");
  EXPECT_THROW(pl::write_image({{3, {"/elsewhere/data.mdb", "c"}}}, "/j", scratch.path()), std::runtime_error);
}

TEST(PowerLossModelTest, AnIsolatedCheckThatCrashesIsReportedAsDamage) {
  EXPECT_EQ(pl::run_isolated([] { return std::string("ok"); }, 5s), "ok");
  const std::string verdict = pl::run_isolated(
      []() -> std::string {
        std::fputs("assertion failed\n", stderr);
        std::abort();
      },
      5s);
  EXPECT_EQ(verdict.rfind("damaged: the check was killed by signal", 0), 0u) << verdict;
  EXPECT_NE(verdict.find("[stderr: assertion failed"), std::string::npos) << verdict;
}

TEST(PowerLossModelTest, AnIsolatedCheckThatHangsIsKilledAtItsBound) {
  const std::string verdict = pl::run_isolated(
      []() -> std::string {
        for (;;) ::pause();
      },
      200ms);
  EXPECT_EQ(verdict, "damaged: the check hung for 200 ms");
}

// ---------------------------------------------------------------------------------------------
// The journal under power loss.

// A crash inside the journal's creation may leave no data.mdb: right only while nothing was promised.
TEST(PowerLossCheckTest, AnImageWithoutAJournalPassesOnlyIfNothingWasPromised) {
  temp_dir image;
  expectations appended;
  appended.appended["s0"] = 1;
  EXPECT_EQ(check_image(image.path(), appended, 1).rfind("lost: the journal has no data.mdb", 0), 0u);
  expectations opened;
  opened.opened = true;
  EXPECT_EQ(check_image(image.path(), opened, 1).rfind("lost: the journal has no data.mdb", 0), 0u);
  EXPECT_FALSE(fs::exists(image.path() / "data.mdb"));
  // Nothing promised: the check's open() creates a fresh journal, which must take appends.
  EXPECT_EQ(check_image(image.path(), expectations{}, 1), "ok");
  EXPECT_TRUE(fs::exists(image.path() / "data.mdb"));
}

// The batch check is what would see a torn batch: an image holding part of one fails.
TEST(PowerLossCheckTest, AnImageHoldingPartOfABatchIsDamaged) {
  temp_dir image;
  {
    journal_options options;
    options.mode = durability::none;
    auto j = journal::open(image.path(), options);
    for (std::uint64_t seq = 1; seq <= 7; ++seq) ASSERT_TRUE(j.append_wait(pl::workload_stream(0), pl::workload_payload(0, seq)));
  }
  EXPECT_EQ(check_image(image.path(), expectations{}, 1, 5).rfind("damaged: s0 holds records 1-7: part of a batch", 0), 0u);
  EXPECT_EQ(check_image(image.path(), expectations{}, 1, 7), "ok");
}

TEST(PowerLossTest, NoneLosesCompletedAppendsAtSomeCrashPoint) {
  const outcome out = run_mode(chaos_settings(durability::none));
  // durability::none promises nothing across an OS crash: if the harness saw no loss here, it
  // could not be trusted to see loss anywhere.
  EXPECT_GT(out.failed_points, 0u) << "the harness found no loss under durability::none";
}

TEST(PowerLossTest, SyncLosesNoCompletedAppendAtAnyCrashPoint) {
  const outcome out = run_mode(chaos_settings(durability::sync));
  EXPECT_GT(out.points, 0u);
  EXPECT_GT(out.without_journal, 0u) << "no crash point fell inside the journal's creation";
  EXPECT_EQ(out.failed_points, 0u) << failures_of(out);
}

TEST(PowerLossTest, PeriodicLosesNoCompletedAppendAtAnyCrashPoint) {
  const outcome out = run_mode(chaos_settings(durability::periodic));
  EXPECT_GT(out.points, 0u);
  EXPECT_GT(out.without_journal, 0u) << "no crash point fell inside the journal's creation";
  EXPECT_EQ(out.failed_points, 0u) << failures_of(out);
}

// Batches under periodic mode, the mode a reliable channel's sender drains its backlog in: every
// completed batch survives, and no crash keeps part of one.
TEST(PowerLossTest, PeriodicKeepsWholeBatchesAtAnyCrashPoint) {
  run_settings s = chaos_settings(durability::periodic);
  s.batch = 5;
  s.in_flight = 4;
  const outcome out = run_mode(s);
  EXPECT_GT(out.points, 0u);
  EXPECT_EQ(out.failed_points, 0u) << failures_of(out);
}

// ---------------------------------------------------------------------------------------------
// Reliable channels under power loss: a sender and a receiver in one process, each over its own
// journal, crashed together (one machine, one power cut). At every crash point the pair of images
// must keep every message the receiver acknowledged, taken once by its application, and every
// message whose send completed either taken or still in the sender's outbox.

/// One channel workload run and how hard to crash it.
struct channel_settings {
  durability mode = durability::sync;
  unsigned streams = 2;
  std::uint64_t messages = 300;
  unsigned interval_ms = 5;
  unsigned in_flight = 8;
  // Sent and not acknowledged per stream (0: no bound but in_flight). A window makes the run
  // take many acknowledgement rounds, so the sender's cursor writes and outbox trims interleave
  // with its sends and the receiver's commits.
  std::uint64_t window = 8;
  bool ack_before_durable = false;  // the planted receiver bug
  std::size_t points = 170;
  unsigned variants = 3;
};

/// What the channel workload had been told by some point of its log.
struct channel_expectations {
  bool opened = false;                         // both journals' open() had returned
  std::map<std::string, std::uint64_t> sent;   // stream -> highest completed send
  std::map<std::string, std::uint64_t> acked;  // stream -> highest acknowledgement reported
};

/// Applies the channel marks of events [from, to] to `want`, checking that each stream's sends
/// complete in order and its acknowledgements only grow.
void take_channel_marks(const std::vector<pl::event>& events, std::size_t from, std::size_t to,
                        channel_expectations& want) {
  for (std::size_t i = from; i <= to && i < events.size(); ++i) {
    if (events[i].type != pl::event_type::mark) continue;
    const auto m = ch::parse_mark(events[i].data);
    ASSERT_TRUE(m) << "a malformed mark: " << events[i].data;
    switch (m->what) {
      case ch::mark::kind::opened:
        want.opened = true;
        break;
      case ch::mark::kind::sent: {
        auto& last = want.sent[m->stream];
        ASSERT_EQ(m->value, last + 1) << m->stream << " sends completed out of order";
        last = m->value;
        break;
      }
      case ch::mark::kind::acked: {
        auto& last = want.acked[m->stream];
        ASSERT_GT(m->value, last) << m->stream << ": an acknowledgement that did not move";
        last = m->value;
        break;
      }
    }
  }
}

/// A big-endian 8-byte value, as the channels store incarnations.
std::optional<std::uint64_t> be64(std::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  std::uint64_t v = 0;
  for (const char c : bytes) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

/// "" when verify() finds `j` clean, else what it found first.
std::string verify_problem(const journal& j) {
  const auto report = j.verify();
  if (!report.corruptions.empty())
    return "verify found " + std::to_string(report.corruptions.size()) + " corrupt records, the first " +
           report.corruptions[0].stream + " " + std::to_string(report.corruptions[0].seq) + ": " +
           report.corruptions[0].what;
  if (!report.damage.empty()) return "verify found damage: " + report.damage[0].what;
  return {};
}

constexpr std::string_view trimmed_pending_note = "the outbox was trimmed while sends were not yet taken";

/// Checks the sender's and the receiver's journals in `dir` (tx/ and rx/) against `want`, for a
/// workload of `messages` per stream on `streams` streams. Runs in a child process: it may crash.
/// Returns "ok", or "ok: " + trimmed_pending_note when the pair passed with the sender's outbox trimmed
/// while completed sends were not yet taken (the case a trim that ran ahead of the receiver's
/// durable mark would lose), or a line starting "lost:" or "damaged:".
std::string check_channel_image(const fs::path& dir, const channel_expectations& want, unsigned streams,
                                std::uint64_t messages) {
  const fs::path tx_dir = dir / ch::sender_dir;
  const fs::path rx_dir = dir / ch::receiver_dir;
  // A journal whose creation was cut short: open() creates a fresh one, which is right only if
  // nothing was promised yet.
  for (const fs::path& side : {tx_dir, rx_dir}) {
    if (fs::exists(side / "data.mdb")) continue;
    if (want.opened) return "lost: " + side.filename().string() + " has no data.mdb, but its open() had returned";
    if (!want.sent.empty() || !want.acked.empty())
      return "lost: " + side.filename().string() + " has no data.mdb, but sends had completed";
  }
  journal_options options;
  options.mode = durability::none;
  std::optional<journal> tx, rx;
  try {
    tx.emplace(journal::open(tx_dir, options));
  } catch (const std::exception& e) {
    return std::string("damaged: the sender's journal does not open: ") + e.what();
  }
  try {
    rx.emplace(journal::open(rx_dir, options));
  } catch (const std::exception& e) {
    return std::string("damaged: the receiver's journal does not open: ") + e.what();
  }
  const auto identity = tx->get("frc.identity", "incarnation");
  if (!identity) return "damaged: the sender's incarnation does not read: " + identity.error().message();
  // 0 when the sender's journal has none yet (an incarnation is never 0).
  std::uint64_t incarnation = 0;
  if (*identity) {
    const auto stored_incarnation = be64(**identity);
    if (!stored_incarnation || *stored_incarnation == 0) return "damaged: the sender's incarnation is malformed";
    incarnation = *stored_incarnation;
  }
  bool trimmed_pending = false;

  for (unsigned index = 0; index < streams; ++index) {
    const std::string stream = ch::stream(index);
    const auto value_of = [](const std::map<std::string, std::uint64_t>& m, const std::string& k) {
      const auto it = m.find(k);
      return it == m.end() ? std::uint64_t{0} : it->second;
    };
    const std::uint64_t acked = value_of(want.acked, stream);
    const std::uint64_t sent = value_of(want.sent, stream);

    // The receiver: its mark, then the application's rows that committed with it.
    const auto stored = rx->get("frc.in", fabric::frc::channel_key(ch::sender_name, stream));
    if (!stored) return "damaged: " + stream + ": the receiver's channel record does not read: " + stored.error().message();
    fabric::frc::channel_record record;
    if (*stored && !fabric::frc::decode_record(**stored, record))
      return "damaged: " + stream + ": the receiver's channel record is malformed";
    const std::uint64_t taken = record.taken;
    if (taken < acked)
      return "lost: " + stream + ": the receiver has taken 1-" + std::to_string(taken) + " but had acknowledged " +
             std::to_string(acked);
    if (taken > messages)
      return "damaged: " + stream + ": the receiver has taken 1-" + std::to_string(taken) + ", more than was ever sent";
    if (*stored && incarnation != 0 && record.sender_incarnation != incarnation)
      return "damaged: " + stream + ": the receiver took from sender incarnation " +
             std::to_string(record.sender_incarnation) + ", the sender's journal is incarnation " +
             std::to_string(incarnation);
    // Every row up to the mark once, in order, with its body; none beyond it (and one more id
    // than was ever sent, so a row of a message never sent shows too).
    for (std::uint64_t id = 1; id <= messages + 1; ++id) {
      const auto read = rx->get(ch::rows_table, ch::row_key(stream, id));
      if (!read) return "damaged: " + stream + ": row " + std::to_string(id) + " does not read: " + read.error().message();
      if (id > taken) {
        if (*read)
          return "damaged: " + stream + ": row " + std::to_string(id) + " is there, but the receiver has taken 1-" +
                 std::to_string(taken) + (id > messages ? " (and it was never sent)" : "");
        continue;
      }
      if (!*read)
        return "lost: " + stream + ": the receiver has taken 1-" + std::to_string(taken) + " but row " +
               std::to_string(id) + " is missing";
      const auto r = ch::parse_row(**read);
      if (!r) return "damaged: " + stream + ": row " + std::to_string(id) + " is malformed";
      if (r->times != 1)
        return "damaged: " + stream + ": message " + std::to_string(id) + " was taken " + std::to_string(r->times) +
               " times";
      if (r->seq != id)
        return "damaged: " + stream + ": message " + std::to_string(id) + " came with sequence " + std::to_string(r->seq);
      if (r->hash != pl::payload_hash(ch::body(index, id)))
        return "damaged: " + stream + ": message " + std::to_string(id) + " was taken with a body never sent";
    }
    const auto tally = rx->get(ch::tally_table, stream);
    if (!tally) return "damaged: " + stream + ": the tally does not read: " + tally.error().message();
    const std::string counted = tally->value_or("0");
    if (counted != std::to_string(taken))
      return "damaged: " + stream + ": the application counted " + counted + " messages, the receiver took " +
             std::to_string(taken);

    // The sender: it sends only what its journal holds durably, so its outbox reaches at least
    // as far as the receiver has taken (else a restarted sender would reuse those sequences);
    // what the receiver had not taken is still in the outbox, intact.
    const auto last = tx->last_seq(ch::outbox(stream));
    if (!last) return "damaged: " + stream + ": the sender's outbox does not read: " + last.error().message();
    if (last->value_or(0) < taken)
      return "damaged: " + stream + ": the receiver has taken 1-" + std::to_string(taken) +
             ", the sender's outbox ends at " + std::to_string(last->value_or(0));
    const auto cursor = tx->cursor(ch::acked_cursor(stream));
    if (!cursor) return "damaged: " + stream + ": the sender's cursor does not read: " + cursor.error().message();
    if (cursor->value_or(0) > taken)
      return "lost: " + stream + ": the sender holds " + std::to_string(cursor->value_or(0)) +
             " as acknowledged, the receiver has taken 1-" + std::to_string(taken);
    std::uint64_t first = 0, next = 0;
    std::string problem;
    auto replayed = tx->replay(
        ch::outbox(stream), 1,
        [&](const fabric::journal_record& rec) {
          if (first == 0) first = next = rec.seq;
          std::int64_t expires = 0;
          std::string_view body;
          if (rec.seq != next) problem = "record " + std::to_string(next) + " is missing, " + std::to_string(rec.seq) + " follows";
          else if (!fabric::frc::decode_outbox(rec.payload, expires, body) || expires != 0)
            problem = "record " + std::to_string(rec.seq) + " is malformed";
          else if (rec.seq > messages || body != ch::body(index, rec.seq))
            problem = "record " + std::to_string(rec.seq) + " is not a message that was sent";
          if (!problem.empty()) return false;
          ++next;
          return true;
        },
        [&](const fabric::journal_corruption& c) { problem = "record " + std::to_string(c.seq) + " is corrupt: " + c.what; });
    if (!problem.empty()) return "damaged: " + stream + ": the sender's outbox: " + problem;
    if (!replayed) return "damaged: " + stream + ": the sender's outbox does not replay: " + replayed.error().message();
    // The outbox holds first..next-1; taken+1..sent must lie within it.
    if (sent > taken && (first == 0 || first > taken + 1 || next - 1 < sent))
      return "lost: " + stream + ": sends up to " + std::to_string(sent) + " had completed, the receiver has taken 1-" +
             std::to_string(taken) + " and the sender's outbox holds " +
             (first == 0 ? std::string("nothing") : std::to_string(first) + "-" + std::to_string(next - 1));
    if (sent > taken && first > 1) trimmed_pending = true;
  }
  if (const auto p = verify_problem(*tx); !p.empty()) return "damaged: the sender's journal: " + p;
  if (const auto p = verify_problem(*rx); !p.empty()) return "damaged: the receiver's journal: " + p;
  return trimmed_pending ? "ok: " + std::string(trimmed_pending_note) : "ok";
}

struct channel_log_summary {
  std::size_t writes = 0, synchronous_writes = 0, syncs = 0, renames = 0, directory_syncs = 0;
  std::size_t syncs_after_open = 0;  // syncs of either data.mdb after both open() returned
  std::size_t files = 0;             // data.mdb files written
  std::map<std::string, std::uint64_t> sent, acked;  // as of the end of the log
  std::size_t acked_marks = 0;
};

channel_log_summary summarise_channel(const std::vector<pl::event>& events) {
  channel_log_summary s;
  bool opened = false;
  std::set<std::uint32_t> files;
  for (const auto& e : events) {
    switch (e.type) {
      case pl::event_type::write:
        ++s.writes;
        files.insert(e.file);
        if ((e.flags & pl::flag_durable) != 0) ++s.synchronous_writes;
        break;
      case pl::event_type::sync:
        ++s.syncs;
        if (opened) ++s.syncs_after_open;
        break;
      case pl::event_type::rename: ++s.renames; break;
      case pl::event_type::dir_sync: ++s.directory_syncs; break;
      case pl::event_type::mark: {
        const auto m = ch::parse_mark(e.data);
        if (!m) break;
        if (m->what == ch::mark::kind::opened) opened = true;
        else if (m->what == ch::mark::kind::sent) s.sent[m->stream] = std::max(s.sent[m->stream], m->value);
        else {
          s.acked[m->stream] = std::max(s.acked[m->stream], m->value);
          ++s.acked_marks;
        }
        break;
      }
      default: break;
    }
  }
  s.files = files.size();
  return s;
}

/// Records the channel workload under `s` and crashes it; reports what it found on stdout.
outcome run_channel(const channel_settings& s) {
  temp_dir scratch;
  const std::string label = std::string("channel-") + mode_name(s.mode) + (s.ack_before_durable ? "-early-ack" : "");
  const std::uint64_t seed =
      env_number("FABRIC_POWERLOSS_SEED", default_seed) ^ (static_cast<std::uint64_t>(s.mode) + 0x100);
  const fs::path work = scratch.path() / "channel";
  std::vector<std::string> program{FABRIC_TEST_POWERLOSS_CHANNEL,
                                   "--dir", work.string(), "--mode", mode_name(s.mode), "--streams",
                                   std::to_string(s.streams), "--messages", std::to_string(s.messages),
                                   "--interval-ms", std::to_string(s.interval_ms), "--in-flight",
                                   std::to_string(s.in_flight), "--window", std::to_string(s.window)};
  if (s.ack_before_durable) program.emplace_back("--ack-before-durable");
  const auto started = std::chrono::steady_clock::now();
  const auto events = record_under_shim(scratch.path(), work, program);
  if (events.empty()) {
    ADD_FAILURE() << "the channel workload left no event log";
    return {};
  }
  const channel_log_summary log = summarise_channel(events);
  // The whole workload completed: every send, and the receiver acknowledged every message.
  for (unsigned index = 0; index < s.streams; ++index) {
    EXPECT_EQ(log.sent.count(ch::stream(index)) ? log.sent.at(ch::stream(index)) : 0, s.messages);
    EXPECT_EQ(log.acked.count(ch::stream(index)) ? log.acked.at(ch::stream(index)) : 0, s.messages);
  }
  // Two journals, told apart, each created aside and renamed into place.
  EXPECT_EQ(log.files, 2u);
  EXPECT_EQ(log.renames, 2u);
  EXPECT_GE(log.directory_syncs, 2u);
  if (s.mode == durability::none) EXPECT_EQ(log.syncs_after_open, 0u) << "durability::none must never sync";
  else EXPECT_GT(log.syncs_after_open, 0u);
  if (s.mode == durability::sync) EXPECT_GT(log.synchronous_writes, 0u);
  else EXPECT_EQ(log.synchronous_writes, 0u);

  const auto points = pick_crash_points(events, find_mark(events, ch::opened_mark), s.points, seed);
  channel_expectations want;
  const image_checks checks{
      .take_marks = [&](std::size_t from, std::size_t to) { take_channel_marks(events, from, to, want); },
      .check = [&](const fs::path& image) { return check_channel_image(image, want, s.streams, s.messages); },
      .without_journal =
          [](const fs::path& image) {
            return !fs::exists(image / ch::sender_dir / "data.mdb") || !fs::exists(image / ch::receiver_dir / "data.mdb");
          },
  };
  const outcome out = crash_images(events, points, s.variants, seed, scratch.path(), fs::canonical(scratch.path()) / "channel",
                                   label, checks);
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("[ powerloss ] %s (%u ms interval, %u in flight, window %llu): %zu events (%zu writes, %zu syncs, %zu "
              "acknowledgements), %zu crash points, %zu images in %.1f s: %zu points failed (%zu images lost completed "
              "work, %zu damaged; %zu lacked a journal); seed %llu\n",
              label.c_str(), s.interval_ms, s.in_flight, static_cast<unsigned long long>(s.window), events.size(), log.writes, log.syncs, log.acked_marks, out.points, out.images, seconds,
              out.failed_points, out.lost, out.damaged, out.without_journal,
              static_cast<unsigned long long>(env_number("FABRIC_POWERLOSS_SEED", default_seed)));
  for (const auto& [note, images] : out.notes) std::printf("[ powerloss ]   %zu images passed where %s\n", images, note.c_str());
  for (const auto& f : out.failures) std::printf("[ powerloss ]   %s\n", f.c_str());
  return out;
}

channel_settings channel_chaos_settings(durability mode) {
  channel_settings s;
  s.mode = mode;
  s.points = env_number("FABRIC_POWERLOSS_POINTS", 170);
  s.variants = static_cast<unsigned>(env_number("FABRIC_POWERLOSS_VARIANTS", 3));
  return s;
}

/// A pair of journals as the channel workload leaves them, written directly: the sender's outbox
/// of stream s0 holding `outbox_from`..`outbox_to`, its cursor at `cursor`; the receiver's mark
/// at `taken` with a row for each id in `rows` (taken `times` times each).
void write_channel_pair(const fs::path& dir, std::uint64_t outbox_from, std::uint64_t outbox_to, std::uint64_t cursor,
                        std::uint64_t taken, const std::vector<std::uint64_t>& rows, std::uint64_t times = 1) {
  journal_options options;
  options.mode = durability::none;
  const std::string stream = ch::stream(0);
  const std::uint64_t incarnation = 42;
  {
    auto tx = journal::open(dir / ch::sender_dir, options);
    std::string id(8, '\0');
    id[7] = static_cast<char>(incarnation);
    ASSERT_TRUE(tx.transact([&](journal_txn& t) { t.put("frc.identity", "incarnation", id); }));
    for (std::uint64_t seq = 1; seq <= outbox_to; ++seq)
      ASSERT_TRUE(tx.append_wait(ch::outbox(stream), fabric::frc::encode_outbox(0, ch::body(0, seq))));
    ASSERT_TRUE(tx.transact([&](journal_txn& t) {
      for (std::uint64_t seq = 1; seq < outbox_from; ++seq) (void)t.dead_letter(ch::outbox(stream), seq, "trimmed", 1);
      if (cursor > 0) t.set_cursor(ch::acked_cursor(stream), cursor);
    }));
  }
  auto rx = journal::open(dir / ch::receiver_dir, options);
  ASSERT_TRUE(rx.transact([&](journal_txn& t) {
    t.put("frc.in", fabric::frc::channel_key(ch::sender_name, stream),
          fabric::frc::encode_record({.sender_incarnation = incarnation, .taken = taken}));
    for (const std::uint64_t id : rows)
      t.put(ch::rows_table, ch::row_key(stream, id),
            ch::row_value({.times = times, .seq = id, .hash = pl::payload_hash(ch::body(0, id))}));
    t.put(ch::tally_table, stream, std::to_string(rows.size() * times));
  }));
}

std::vector<std::uint64_t> ids(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t id = from; id <= to; ++id) out.push_back(id);
  return out;
}

channel_expectations promised(std::uint64_t sent, std::uint64_t acked) {
  channel_expectations want;
  want.opened = true;
  want.sent[ch::stream(0)] = sent;
  if (acked > 0) want.acked[ch::stream(0)] = acked;
  return want;
}

TEST(PowerLossChannelCheckTest, APairThatKeptEverythingPromisedPasses) {
  temp_dir image;
  // 1-4 taken, 5-8 still in the outbox (1-2 trimmed after the cursor moved to 2).
  write_channel_pair(image.path(), 3, 8, 2, 4, ids(1, 4));
  EXPECT_EQ(check_channel_image(image.path(), promised(8, 4), 1, 10), "ok: " + std::string(trimmed_pending_note));
  // Everything taken, nothing trimmed.
  temp_dir all_taken;
  write_channel_pair(all_taken.path(), 1, 8, 0, 8, ids(1, 8));
  EXPECT_EQ(check_channel_image(all_taken.path(), promised(8, 8), 1, 10), "ok");
}

TEST(PowerLossChannelCheckTest, AnAcknowledgedMessageTheReceiverLacksIsLost) {
  temp_dir image;
  write_channel_pair(image.path(), 1, 8, 0, 4, ids(1, 4));
  const std::string verdict = check_channel_image(image.path(), promised(8, 6), 1, 10);
  EXPECT_EQ(verdict, "lost: s0: the receiver has taken 1-4 but had acknowledged 6");
}

TEST(PowerLossChannelCheckTest, ASentMessageNeitherTakenNorInTheOutboxIsLost) {
  temp_dir image;
  // The outbox was trimmed to 6 while the receiver holds only 1-4: 5 is nowhere.
  write_channel_pair(image.path(), 6, 8, 0, 4, ids(1, 4));
  EXPECT_EQ(check_channel_image(image.path(), promised(8, 4), 1, 10).rfind("lost: s0: sends up to 8 had completed", 0), 0u);
  // The outbox lacks the last completed send.
  temp_dir short_outbox;
  write_channel_pair(short_outbox.path(), 1, 7, 0, 4, ids(1, 4));
  EXPECT_EQ(check_channel_image(short_outbox.path(), promised(8, 4), 1, 10).rfind("lost: s0: sends up to 8", 0), 0u);
}

TEST(PowerLossChannelCheckTest, ASenderCursorAheadOfTheReceiverIsLost) {
  temp_dir image;
  write_channel_pair(image.path(), 1, 8, 5, 4, ids(1, 4));
  EXPECT_EQ(check_channel_image(image.path(), promised(8, 4), 1, 10),
            "lost: s0: the sender holds 5 as acknowledged, the receiver has taken 1-4");
}

TEST(PowerLossChannelCheckTest, AReceiverAheadOfTheSendersJournalIsDamage) {
  temp_dir image;
  write_channel_pair(image.path(), 1, 3, 0, 4, ids(1, 4));
  EXPECT_EQ(check_channel_image(image.path(), promised(3, 4), 1, 10),
            "damaged: s0: the receiver has taken 1-4, the sender's outbox ends at 3");
}

TEST(PowerLossChannelCheckTest, RowsThatDisagreeWithTheMarkAreDamage) {
  temp_dir missing, beyond, twice;
  write_channel_pair(missing.path(), 1, 8, 0, 4, {1, 2, 4});
  EXPECT_EQ(check_channel_image(missing.path(), promised(8, 4), 1, 10),
            "lost: s0: the receiver has taken 1-4 but row 3 is missing");
  write_channel_pair(beyond.path(), 1, 8, 0, 4, ids(1, 5));
  EXPECT_EQ(check_channel_image(beyond.path(), promised(8, 4), 1, 10),
            "damaged: s0: row 5 is there, but the receiver has taken 1-4");
  write_channel_pair(twice.path(), 1, 8, 0, 4, ids(1, 4), 2);
  EXPECT_EQ(check_channel_image(twice.path(), promised(8, 4), 1, 10), "damaged: s0: message 1 was taken 2 times");
}

TEST(PowerLossChannelCheckTest, APairWithoutAJournalPassesOnlyIfNothingWasPromised) {
  temp_dir image;
  EXPECT_EQ(check_channel_image(image.path(), promised(1, 0), 1, 10), "lost: tx has no data.mdb, but its open() had returned");
  channel_expectations sent_only;
  sent_only.sent[ch::stream(0)] = 1;
  EXPECT_EQ(check_channel_image(image.path(), sent_only, 1, 10), "lost: tx has no data.mdb, but sends had completed");
  EXPECT_EQ(check_channel_image(image.path(), channel_expectations{}, 1, 10), "ok");
}

// The runs that must fail check fewer points: they fail at most of them.
constexpr std::size_t points_to_see_loss = 60;

TEST(PowerLossChannelTest, NoneLosesSentOrAcknowledgedMessagesAtSomeCrashPoint) {
  channel_settings s = channel_chaos_settings(durability::none);
  s.points = std::min<std::size_t>(s.points, points_to_see_loss);
  const outcome out = run_channel(s);
  // durability::none promises nothing across an OS crash: the harness must see that.
  EXPECT_GT(out.failed_points, 0u) << "the harness found no loss under durability::none";
}

TEST(PowerLossChannelTest, SyncLosesNoSentOrAcknowledgedMessageAtAnyCrashPoint) {
  const outcome out = run_channel(channel_chaos_settings(durability::sync));
  EXPECT_GT(out.points, 0u);
  EXPECT_GT(out.without_journal, 0u) << "no crash point fell inside the journals' creation";
  EXPECT_GT(out.notes.count(std::string(trimmed_pending_note)), 0u) << "no image had its outbox trimmed mid-run";
  EXPECT_EQ(out.failed_points, 0u) << failures_of(out);
}

TEST(PowerLossChannelTest, PeriodicLosesNoSentOrAcknowledgedMessageAtAnyCrashPoint) {
  const outcome out = run_channel(channel_chaos_settings(durability::periodic));
  EXPECT_GT(out.points, 0u);
  EXPECT_GT(out.without_journal, 0u) << "no crash point fell inside the journals' creation";
  EXPECT_GT(out.notes.count(std::string(trimmed_pending_note)), 0u) << "no image had its outbox trimmed mid-run";
  EXPECT_EQ(out.failed_points, 0u) << failures_of(out);
}

// The check is what would see a receiver that acknowledges before its mark is durable: with that
// bug planted, sync durability loses acknowledged messages at some crash point.
TEST(PowerLossChannelTest, AReceiverAcknowledgingBeforeItsMarkIsDurableIsCaught) {
  channel_settings s = channel_chaos_settings(durability::sync);
  s.ack_before_durable = true;
  s.points = std::min<std::size_t>(s.points, points_to_see_loss);
  const outcome out = run_channel(s);
  EXPECT_GT(out.lost, 0u) << "the harness missed acknowledgements sent before the receiver's mark was durable";
}

// The long tier (label soak): longer workloads, several sync intervals and in-flight depths, and
// thousands of crash points.
void soak(durability mode) {
  for (const unsigned interval : {1u, 5u, 20u}) {
    run_settings s = chaos_settings(mode);
    s.records = 400;
    s.interval_ms = interval;
    s.in_flight = interval == 5 ? 64 : 8;
    s.points = env_number("FABRIC_POWERLOSS_POINTS", 1500);
    s.variants = static_cast<unsigned>(env_number("FABRIC_POWERLOSS_VARIANTS", 4));
    const outcome out = run_mode(s);
    EXPECT_GT(out.points, 0u);
    EXPECT_EQ(out.failed_points, 0u) << "sync interval " << interval << " ms:" << failures_of(out);
  }
}

TEST(PowerLossSoakTest, SyncLosesNoCompletedAppendAtThousandsOfCrashPoints) { soak(durability::sync); }
TEST(PowerLossSoakTest, PeriodicLosesNoCompletedAppendAtThousandsOfCrashPoints) { soak(durability::periodic); }

// The channels' long tier: longer runs, several sync intervals, in-flight depths and windows (a
// window makes the sender wait for acknowledgements, so cursor writes and outbox trims interleave
// with the sends), and thousands of crash points.
void channel_soak(durability mode) {
  struct shape {
    unsigned interval_ms, in_flight;
    std::uint64_t window;
  };
  for (const shape& sh : {shape{1, 8, 4}, shape{5, 64, 0}, shape{20, 16, 32}}) {
    channel_settings s = channel_chaos_settings(mode);
    s.messages = 400;
    s.interval_ms = sh.interval_ms;
    s.in_flight = sh.in_flight;
    s.window = sh.window;
    s.points = env_number("FABRIC_POWERLOSS_POINTS", 1500);
    s.variants = static_cast<unsigned>(env_number("FABRIC_POWERLOSS_VARIANTS", 4));
    const outcome out = run_channel(s);
    EXPECT_GT(out.points, 0u);
    EXPECT_EQ(out.failed_points, 0u) << "sync interval " << sh.interval_ms << " ms, window " << sh.window << ":"
                                     << failures_of(out);
  }
}

TEST(PowerLossSoakTest, ChannelSyncLosesNoSentOrAcknowledgedMessageAtThousandsOfCrashPoints) { channel_soak(durability::sync); }
TEST(PowerLossSoakTest, ChannelPeriodicLosesNoSentOrAcknowledgedMessageAtThousandsOfCrashPoints) {
  channel_soak(durability::periodic);
}

}  // namespace
