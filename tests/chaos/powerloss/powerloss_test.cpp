// Power-loss test of fabric::journal: under durability sync and periodic, no crash of the machine
// loses an append the journal had completed; under none, some crash does (so the harness is known
// to catch loss). The model and how to run the long tier: README.md beside this file.
//
// Each test runs the journal workload under the shim (which logs every write and sync to data.mdb
// and each completion mark, in order), then for many crash points rebuilds images of what the disk
// could hold after a power cut there, and checks each image in a child process: the journal
// opens, every append and cursor transaction completed before the crash point is there with its
// content, every stream is a gapless run of correct records, verify() agrees, and the journal
// takes new appends.
//
// Environment:
//   FABRIC_POWERLOSS_SEED      seed of the crash points and page subsets (printed by every run)
//   FABRIC_POWERLOSS_POINTS    crash points per workload run (default 170; soak 1500)
//   FABRIC_POWERLOSS_VARIANTS  random images per crash point (default 3; soak 4)
//   FABRIC_POWERLOSS_KEEP      a directory to copy the images that fail into, for inspection
#include <fabric/journal.hpp>

#include "chaos/powerloss/crash_model.hpp"
#include "chaos/powerloss/journal_workload.hpp"
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
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace pl = fabric::testing::powerloss;
using fabric::durability;
using fabric::journal;
using fabric::journal_options;
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

/// Runs the workload under the shim in `scratch` and returns its event log.
std::vector<pl::event> record_workload(const fs::path& scratch, const run_settings& s) {
  const fs::path log = scratch / "events.log";
  const fs::path dir = scratch / "journal";
  fs::remove(log);
  fs::remove_all(dir);
  std::string asan = "ASAN_OPTIONS=verify_asan_link_order=0";  // the shim is preloaded before ASan
  if (const char* given = std::getenv("ASAN_OPTIONS")) asan += std::string(":") + given;
  fabric::testing::child_process workload({"/usr/bin/env", std::string("LD_PRELOAD=") + FABRIC_TEST_POWERLOSS_SHIM,
                                           "FABRIC_POWERLOSS_LOG=" + log.string(), "FABRIC_POWERLOSS_FILES=data.mdb", asan,
                                           FABRIC_TEST_POWERLOSS_JOURNAL, "--dir", dir.string(), "--mode", mode_name(s.mode),
                                           "--streams", std::to_string(s.streams), "--records", std::to_string(s.records),
                                           "--interval-ms", std::to_string(s.interval_ms), "--in-flight",
                                           std::to_string(s.in_flight), "--batch", std::to_string(s.batch)});
  const int rc = workload.finish(workload_bound);
  EXPECT_EQ(rc, 0) << "the workload failed: " << workload.err;
  if (rc != 0) return {};
  auto events = pl::read_log(log);
  fs::remove(log);
  fs::remove_all(dir);
  return events;
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

outcome crash_and_check(const std::vector<pl::event>& events, const run_settings& s, std::uint64_t seed,
                        const fs::path& scratch, const fs::path& root) {
  outcome out;
  auto candidates = pl::crash_points(events);
  // Every crash point inside the open() that creates the journal is checked (there are few, and
  // a random draw would miss most); `points` of the rest are drawn.
  const auto opened = std::find_if(events.begin(), events.end(), [](const pl::event& e) {
    return e.type == pl::event_type::mark && e.data == pl::opened_mark;
  });
  const auto first = static_cast<std::size_t>(opened - events.begin());
  const auto later = std::find_if(candidates.begin(), candidates.end(), [first](std::size_t k) { return k >= first; });
  std::vector<std::size_t> creation(candidates.begin(), later);
  candidates.erase(candidates.begin(), later);
  std::mt19937_64 choose(seed);
  if (candidates.size() > s.points) {
    std::shuffle(candidates.begin(), candidates.end(), choose);
    candidates.resize(s.points);
  }
  candidates.insert(candidates.end(), creation.begin(), creation.end());
  std::sort(candidates.begin(), candidates.end());
  const char* keep = std::getenv("FABRIC_POWERLOSS_KEEP");
  pl::disk_model disk(events);
  expectations want;
  std::size_t marks_from = 0;
  const fs::path image_dir = scratch / "image";
  for (const std::size_t k : candidates) {
    disk.advance_to(k);
    take_marks(events, marks_from, k, want);
    marks_from = k + 1;
    ++out.points;
    // Nothing unsynced: every image would be the same.
    const unsigned variants = disk.pending_pieces() == 0 ? 1 : s.variants;
    bool point_failed = false;
    for (unsigned v = 0; v < variants; ++v) {
      // Variant 0 keeps nothing unsynced (the classic crash); the others keep a random share.
      const std::uint64_t image_seed = seed ^ (std::uint64_t{k} << 8) ^ v;
      std::mt19937_64 rng(image_seed);
      const double land = v == 0 ? 0.0 : std::uniform_real_distribution<double>(0.0, 1.0)(rng);
      fs::remove_all(image_dir);
      fs::create_directories(image_dir);
      pl::write_image(disk.image(land, rng), root, image_dir);
      if (!fs::exists(image_dir / "data.mdb")) ++out.without_journal;
      const std::string verdict =
          pl::run_isolated([&] { return check_image(image_dir, want, s.streams, s.batch); }, check_bound);
      ++out.images;
      if (verdict == "ok") continue;
      point_failed = true;
      (verdict.rfind("lost:", 0) == 0 ? out.lost : out.damaged) += 1;
      if (out.failures.size() < failures_shown) {
        std::ostringstream line;
        line << "crash after event " << k << " of " << events.size() << ", variant " << v << " (land " << land
             << ", image seed " << image_seed << "): " << verdict;
        out.failures.push_back(line.str());
      }
      if (keep != nullptr && *keep != '\0') {
        const fs::path kept = fs::path(keep) / (std::string(mode_name(s.mode)) + "-" + std::to_string(k) + "-" + std::to_string(v));
        fs::create_directories(kept);
        fs::copy(image_dir, kept, fs::copy_options::overwrite_existing | fs::copy_options::recursive);
      }
    }
    if (point_failed) ++out.failed_points;
  }
  fs::remove_all(image_dir);
  return out;
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

}  // namespace
