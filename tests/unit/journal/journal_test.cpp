// Tests of fabric::journal: appends, group commit, durability modes, reads, replay, reopen,
// map growth, double open, back-pressure, corrupt records and stale reader slots.
#include <fabric/journal.hpp>

#include "journal/record.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using fabric::durability;
using fabric::errc;
using fabric::journal;
using fabric::journal_options;
using fabric::testing::fast_journal_options;
using fabric::testing::temp_dir;
using namespace std::chrono_literals;

std::vector<std::string> payloads_of(const fabric::journal_chunk& chunk) {
  std::vector<std::string> out;
  for (const auto& r : chunk.records) out.push_back(r.payload);
  return out;
}

TEST(JournalTest, OpensAnEmptyJournalInANewDirectory) {
  temp_dir dir;
  auto j = journal::open(dir.path() / "a" / "b", fast_journal_options());
  EXPECT_TRUE(j.streams().value().empty());
  EXPECT_FALSE(j.last_seq("orders").value().has_value());
  auto chunk = j.read("orders", 1);
  ASSERT_TRUE(chunk);
  EXPECT_TRUE(chunk->records.empty());
  EXPECT_FALSE(chunk->corruption);
}

// A crash inside the open() that creates a journal leaves at most a .creating directory beside
// no data.mdb: the next open removes it and creates the journal, leaving nothing behind.
TEST(JournalTest, CreationRemovesWhatAnInterruptedCreationLeft) {
  temp_dir dir;
  std::filesystem::create_directories(dir.path() / ".creating");
  std::ofstream(dir.path() / ".creating" / "data.mdb") << "half a journal";
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    auto seq = j.append_wait("orders", "first");
    ASSERT_TRUE(seq);
    EXPECT_EQ(*seq, 1u);
  }
  EXPECT_TRUE(std::filesystem::is_regular_file(dir.path() / "data.mdb"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / ".creating"));
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_EQ(j.last_seq("orders").value(), 1u);
}

TEST(JournalTest, AppendsAreReadBackInOrderWithTheirSequenceNumbers) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  for (int i = 0; i < 10; ++i) {
    auto seq = j.append_wait("orders", "order-" + std::to_string(i));
    ASSERT_TRUE(seq) << seq.error().message();
    EXPECT_EQ(*seq, static_cast<std::uint64_t>(i + 1));
  }
  auto chunk = j.read("orders", 1);
  ASSERT_TRUE(chunk);
  ASSERT_EQ(chunk->records.size(), 10u);
  for (std::size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(chunk->records[i].seq, i + 1);
    EXPECT_EQ(chunk->records[i].payload, "order-" + std::to_string(i));
    EXPECT_GT(chunk->records[i].timestamp_ns, 0);
  }
  EXPECT_EQ(chunk->next_seq, 11u);
  EXPECT_EQ(j.last_seq("orders").value(), 10u);
}

TEST(JournalTest, EachStreamHasItsOwnSequence) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_EQ(j.append_wait("a", "1").value(), 1u);
  EXPECT_EQ(j.append_wait("b", "1").value(), 1u);
  EXPECT_EQ(j.append_wait("a", "2").value(), 2u);
  EXPECT_EQ(j.streams().value(), (std::vector<std::string>{"a", "b"}));
}

TEST(JournalTest, EmptyAndBinaryPayloadsRoundTrip) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  const std::string binary("\0\1\2\xff\0", 5);
  ASSERT_TRUE(j.append_wait("s", ""));
  ASSERT_TRUE(j.append_wait("s", binary));
  auto chunk = j.read("s", 1);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(payloads_of(*chunk), (std::vector<std::string>{"", binary}));
}

TEST(JournalTest, ReopeningKeepsRecordsAndContinuesTheSequence) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    ASSERT_TRUE(j.append_wait("s", "one"));
    ASSERT_TRUE(j.append_wait("s", "two"));
  }
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_EQ(j.last_seq("s").value(), 2u);
  EXPECT_EQ(j.append_wait("s", "three").value(), 3u);
  auto chunk = j.read("s", 1);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(payloads_of(*chunk), (std::vector<std::string>{"one", "two", "three"}));
}

TEST(JournalTest, OpeningTheSameDirectoryTwiceInOneProcessIsRefused) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  try {
    auto again = journal::open(dir.path() / "." , fast_journal_options());
    FAIL() << "a second open of the same directory succeeded";
  } catch (const fabric::error& e) {
    EXPECT_EQ(e.code(), fabric::make_error_code(errc::invalid_state));
    EXPECT_NE(std::string(e.what()).find("already open"), std::string::npos);
  }
}

TEST(JournalTest, ADirectoryCanBeOpenedAgainAfterItsJournalIsClosed) {
  temp_dir dir;
  { auto j = journal::open(dir.path(), fast_journal_options()); }
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_TRUE(j.append_wait("s", "x"));
}

TEST(JournalTest, BadOptionsAreRefused) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.max_batch = 0;
  EXPECT_THROW(journal::open(dir.path(), o), fabric::error);
  o = fast_journal_options();
  o.max_map_size = o.map_size - 1;
  EXPECT_THROW(journal::open(dir.path(), o), fabric::error);
}

TEST(JournalTest, ManyThreadsAppendConcurrentlyAndEveryAppendLandsOnce) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  constexpr int threads = 4;
  constexpr int per_thread = 500;
  std::vector<std::thread> producers;
  std::vector<std::vector<std::uint64_t>> seqs(threads);
  for (int t = 0; t < threads; ++t) {
    producers.emplace_back([&, t] {
      std::vector<std::future<fabric::result<std::uint64_t>>> futures;
      for (int i = 0; i < per_thread; ++i)
        futures.push_back(j.append("shared", std::to_string(t) + ":" + std::to_string(i)));
      for (auto& f : futures) {
        ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
        auto r = f.get();
        ASSERT_TRUE(r);
        seqs[static_cast<std::size_t>(t)].push_back(*r);
      }
    });
  }
  for (auto& p : producers) p.join();
  // Each producer's appends were sequenced in the order it made them.
  for (const auto& s : seqs) EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
  std::map<std::string, int> seen;
  auto delivered = j.replay("shared", 1, [&](const fabric::journal_record& r) {
    ++seen[r.payload];
    return true;
  });
  ASSERT_TRUE(delivered);
  EXPECT_EQ(*delivered, std::uint64_t{threads * per_thread});
  EXPECT_EQ(seen.size(), std::size_t{threads * per_thread});
  for (const auto& [payload, count] : seen) EXPECT_EQ(count, 1) << payload;
  // Group commit: fewer commits than appends once producers overlap.
  EXPECT_LE(j.stats().commits, j.stats().appends);
  EXPECT_EQ(j.stats().appends, std::uint64_t{threads * per_thread});
}

TEST(JournalTest, SyncModeCompletesAppendsAfterTheirCommit) {
  temp_dir dir;
  journal_options o;
  o.mode = durability::sync;
  auto j = journal::open(dir.path(), o);
  EXPECT_EQ(j.append_wait("s", "durable").value(), 1u);
  EXPECT_EQ(j.stats().commits, 1u);
}

TEST(JournalTest, PeriodicModeCompletesAppendsAfterAnFsync) {
  temp_dir dir;
  journal_options o;
  o.mode = durability::periodic;
  o.sync_interval = 5ms;
  auto j = journal::open(dir.path(), o);
  auto f = j.append("s", "soon durable");
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(f.get().value(), 1u);
  EXPECT_GE(j.stats().syncs, 1u);
}

TEST(JournalTest, ClosingCompletesEveryAcceptedAppend) {
  temp_dir dir;
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  {
    journal_options o;
    o.mode = durability::periodic;
    o.sync_interval = 1000ms;  // the close must not wait for the interval to complete them
    auto j = journal::open(dir.path(), o);
    for (int i = 0; i < 1000; ++i)
      j.append("s", "x", [&](fabric::result<std::uint64_t> r) { (r ? ok : failed).fetch_add(1); });
  }
  EXPECT_EQ(ok.load(), 1000);
  EXPECT_EQ(failed.load(), 0);
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_EQ(j.last_seq("s").value(), 1000u);
}

TEST(JournalTest, OversizedPayloadsAndBadStreamNamesAreRefused) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.max_record_size = 16;
  auto j = journal::open(dir.path(), o);
  EXPECT_TRUE(j.append_wait("s", std::string(17, 'x')).is(errc::too_large));
  EXPECT_TRUE(j.append_wait("", "x").is(errc::too_large));
  EXPECT_TRUE(j.append_wait(std::string(256, 's'), "x").is(errc::too_large));
  EXPECT_TRUE(j.read("", 1).is(errc::invalid_argument));
  EXPECT_TRUE(j.append_wait("s", std::string(16, 'x')));
}

TEST(JournalTest, AFullQueueReportsBackPressure) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.max_pending = 2;
  auto j = journal::open(dir.path(), o);
  fabric::testing::writer_hold hold(j, "s");  // the queue cannot drain meanwhile
  auto a = j.append("s", "second");
  auto b = j.append("s", "third");
  auto c = j.append("s", "fourth");
  ASSERT_EQ(c.wait_for(0s), std::future_status::ready);
  EXPECT_TRUE(c.get().is(errc::back_pressure));
  hold.release();
  EXPECT_EQ(a.get().value(), 2u);
  EXPECT_EQ(b.get().value(), 3u);
}

TEST(JournalTest, ReadsAreBoundedByRecordsAndBytes) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(j.append_wait("s", std::string(100, 'a')));
  auto by_count = j.read("s", 5, 3);
  ASSERT_TRUE(by_count);
  ASSERT_EQ(by_count->records.size(), 3u);
  EXPECT_EQ(by_count->records.front().seq, 5u);
  EXPECT_EQ(by_count->next_seq, 8u);
  auto by_bytes = j.read("s", 1, 100, 250);
  ASSERT_TRUE(by_bytes);
  EXPECT_EQ(by_bytes->records.size(), 2u);
  // A record larger than max_bytes is still returned alone, so a reader always progresses.
  auto tiny = j.read("s", 1, 100, 1);
  ASSERT_TRUE(tiny);
  EXPECT_EQ(tiny->records.size(), 1u);
  auto past_end = j.read("s", 21);
  ASSERT_TRUE(past_end);
  EXPECT_TRUE(past_end->records.empty());
}

TEST(JournalTest, ReplayDeliversEverythingAcrossChunksAndCanStopEarly) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  for (int i = 0; i < 10000; ++i) j.append("s", std::to_string(i), nullptr);
  ASSERT_TRUE(j.append_wait("s", "last"));
  std::uint64_t expected = 1;
  auto all = j.replay("s", 1, [&](const fabric::journal_record& r) {
    EXPECT_EQ(r.seq, expected++);
    return true;
  });
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, 10001u);
  int seen = 0;
  auto some = j.replay("s", 500, [&](const fabric::journal_record&) { return ++seen < 3; });
  ASSERT_TRUE(some);
  EXPECT_EQ(*some, 3u);
}

TEST(JournalTest, TheMapGrowsFromATinyInitialSize) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.map_size = 256 * 1024;
  auto j = journal::open(dir.path(), o);
  const std::string payload(4096, 'm');
  std::vector<std::future<fabric::result<std::uint64_t>>> futures;
  for (int i = 0; i < 1000; ++i) futures.push_back(j.append("big", payload));
  for (auto& f : futures) ASSERT_TRUE(f.get());
  EXPECT_GT(j.stats().map_resizes, 0u);
  EXPECT_GT(j.stats().map_size, o.map_size);
  std::uint64_t count = 0;
  ASSERT_TRUE(j.replay("big", 1, [&](const fabric::journal_record& r) {
    EXPECT_EQ(r.payload, payload);
    ++count;
    return true;
  }));
  EXPECT_EQ(count, 1000u);
}

TEST(JournalTest, AMapAtItsLimitFailsAppendsInsteadOfGrowing) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.map_size = 256 * 1024;
  o.max_map_size = 256 * 1024;
  auto j = journal::open(dir.path(), o);
  fabric::result<std::uint64_t> last = 0u;
  for (int i = 0; i < 200 && last; ++i) last = j.append_wait("s", std::string(4096, 'x'));
  EXPECT_FALSE(last);
  EXPECT_EQ(last.error().value(), MDB_MAP_FULL);
}


TEST(JournalTest, ACorruptRecordIsReportedWithItsStreamAndSequenceAndNeverReturned) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE(j.append_wait("orders", "order " + std::to_string(i)));
  }
  fabric::testing::damage_journal_record(dir.path(), "orders", 3, [](std::string& v) { v.back() ^= 0x01; });
  auto j = journal::open(dir.path(), fast_journal_options());
  auto chunk = j.read("orders", 1);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(payloads_of(*chunk), (std::vector<std::string>{"order 1", "order 2"}));
  ASSERT_TRUE(chunk->corruption);
  EXPECT_EQ(chunk->corruption->stream, "orders");
  EXPECT_EQ(chunk->corruption->seq, 3u);
  EXPECT_FALSE(chunk->corruption->what.empty());

  std::vector<fabric::journal_corruption> reports;
  std::uint64_t delivered = 0;
  auto replayed = j.replay(
      "orders", 1,
      [&](const fabric::journal_record&) {
        ++delivered;
        return true;
      },
      [&](const fabric::journal_corruption& c) { reports.push_back(c); });
  EXPECT_TRUE(replayed.is(errc::malformed));
  EXPECT_EQ(delivered, 2u);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].seq, 3u);
  // Reading past the damage still works.
  auto after = j.read("orders", 4);
  ASSERT_TRUE(after);
  EXPECT_EQ(payloads_of(*after), (std::vector<std::string>{"order 4", "order 5"}));
}

TEST(JournalTest, ATruncatedRecordIsReportedAsCorrupt) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    ASSERT_TRUE(j.append_wait("s", "a payload that will lose its tail"));
  }
  fabric::testing::damage_journal_record(dir.path(), "s", 1, [](std::string& v) { v.resize(v.size() - 5); });
  auto j = journal::open(dir.path(), fast_journal_options());
  auto chunk = j.read("s", 1);
  ASSERT_TRUE(chunk);
  EXPECT_TRUE(chunk->records.empty());
  ASSERT_TRUE(chunk->corruption);
  EXPECT_EQ(chunk->corruption->seq, 1u);
}

// A child process that opens the environment read-only, optionally takes a reader slot, says
// so on a pipe and waits to be killed. Returns its pid once it is ready, or -1.
pid_t spawn_lmdb_holder(const std::filesystem::path& dir, bool take_reader_slot) {
  int ready[2];
  if (::pipe(ready) != 0) return -1;
  const pid_t child = ::fork();
  if (child < 0) return -1;
  if (child == 0) {
    MDB_env* env = nullptr;
    MDB_txn* txn = nullptr;
    if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 16) != 0 ||
        mdb_env_open(env, dir.c_str(), MDB_RDONLY, 0640) != 0)
      ::_exit(1);
    if (take_reader_slot && mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) != 0) ::_exit(1);
    const char byte = 'r';
    if (::write(ready[1], &byte, 1) != 1) ::_exit(1);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char byte = 0;
  const bool ok = ::read(ready[0], &byte, 1) == 1;
  ::close(ready[0]);
  if (!ok) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return -1;
  }
  return child;
}

void kill_and_reap(pid_t child) {
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

TEST(JournalTest, ReaderSlotsOfAKilledProcessAreClearedAtOpen) {
  temp_dir dir;
  { auto j = journal::open(dir.path(), fast_journal_options()); ASSERT_TRUE(j.append_wait("s", "x")); }
  // LMDB resets its reader table when the first process opens the environment, so a dead
  // reader's slot only lingers while another process keeps the environment open: the keeper.
  const pid_t keeper = spawn_lmdb_holder(dir.path(), false);
  ASSERT_GT(keeper, 0);
  const pid_t reader = spawn_lmdb_holder(dir.path(), true);
  ASSERT_GT(reader, 0);
  kill_and_reap(reader);
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    EXPECT_GE(j.stats().stale_readers, 1u);
    EXPECT_TRUE(j.append_wait("s", "after"));
  }
  kill_and_reap(keeper);
}

TEST(JournalTest, ACallbackThatThrowsDoesNotStopTheWriter) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  j.append("s", "x", [](fabric::result<std::uint64_t>) { throw std::runtime_error("boom"); });
  EXPECT_EQ(j.append_wait("s", "y").value(), 2u);
}

}  // namespace

namespace {

TEST(JournalToolsTest, VerifyCountsRecordsAndReportsEveryCorruptOne) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(j.append_wait("a", "payload"));
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(j.append_wait("b", "xy"));
  }
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    auto clean = j.verify();
    EXPECT_EQ(clean.records, 15u);
    EXPECT_EQ(clean.bytes, 10u * 7u + 5u * 2u);
    EXPECT_TRUE(clean.corruptions.empty());
  }
  fabric::testing::damage_journal_record(dir.path(), "a", 2, [](std::string& v) { v[25] ^= 0x40; });
  fabric::testing::damage_journal_record(dir.path(), "a", 7, [](std::string& v) { v[0] ^= 0x01; });
  auto j = journal::open(dir.path(), fast_journal_options());
  auto report = j.verify();
  EXPECT_EQ(report.records, 13u);
  ASSERT_EQ(report.corruptions.size(), 2u);
  EXPECT_EQ(report.corruptions[0].stream, "a");
  EXPECT_EQ(report.corruptions[0].seq, 2u);
  EXPECT_EQ(report.corruptions[1].seq, 7u);
}

TEST(JournalToolsTest, StreamInfosGiveEachStreamsExtent) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(j.append_wait("a", "x"));
  ASSERT_TRUE(j.append_wait("b", "x"));
  auto infos = j.stream_infos().value();
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_EQ(infos[0].name, "a");
  EXPECT_EQ(infos[0].first_seq, 1u);
  EXPECT_EQ(infos[0].last_seq, 3u);
  EXPECT_EQ(infos[0].records, 3u);
  EXPECT_EQ(infos[1].records, 1u);
}

TEST(JournalToolsTest, ACompactCopyOpensWithTheSameContent) {
  temp_dir dir;
  temp_dir copy;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(j.append_wait("s", std::to_string(i)));
    ASSERT_TRUE(j.transact([](fabric::journal_txn& t) { t.set_cursor("c", 50); }));
    ASSERT_TRUE(j.copy_to(copy.path()));
  }
  auto j = journal::open(copy.path(), fast_journal_options());
  EXPECT_EQ(j.last_seq("s").value(), 100u);
  EXPECT_EQ(j.cursor("c").value(), 50u);
  EXPECT_TRUE(j.verify().corruptions.empty());
}

}  // namespace
