// Tests of what the journal does with damage it did not cause: records moved between streams,
// records of the older format, stored counts that disagree with the records there are, and
// damaged data files, which open() must refuse or open but never crash on.
#include <fabric/journal.hpp>

#include "core/byte_order.hpp"
#include "journal/record.hpp"
#include "support/damaged_journal.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

namespace {

using fabric::journal;
using fabric::testing::damage_journal_record;
using fabric::testing::fast_journal_options;
using fabric::testing::temp_dir;

// Rewrites a stored record as format version 1 wrote it: version byte 1 and the CRC over the
// big-endian key and the value after the CRC field, without the stream.
void make_version_1(std::string& value, std::uint64_t seq) {
  using namespace fabric::journal_detail;
  ASSERT_GE(value.size(), record_header_size);
  value[4] = 1;
  std::byte key[8];
  encode_seq_key(seq, key);
  std::uint32_t crc = crc32c(0, key, sizeof key);
  crc = crc32c(crc, value.data() + 4, value.size() - 4);
  fabric::detail::store_le(crc, value.data());
}

// The stored bytes of record `seq` of `stream`, read by rewriting them unchanged.
std::string raw_record(const temp_dir& dir, const std::string& stream, std::uint64_t seq) {
  std::string bytes;
  damage_journal_record(dir.path(), stream, seq, [&](std::string& v) { bytes = v; });
  return bytes;
}

TEST(JournalDamageTest, ARecordCopiedFromAnotherStreamAtTheSameSequenceFailsItsCheck) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    ASSERT_TRUE(j.append_wait("alpha", "alpha's own"));
    ASSERT_TRUE(j.append_wait("beta", "beta's record"));
  }
  const std::string from_beta = raw_record(dir, "beta", 1);
  damage_journal_record(dir.path(), "alpha", 1, [&](std::string& v) { v = from_beta; });

  auto j = journal::open(dir.path(), fast_journal_options());
  auto chunk = j.read("alpha", 1);
  ASSERT_TRUE(chunk);
  EXPECT_TRUE(chunk->records.empty()) << "beta's record was returned as alpha's: " << chunk->records[0].payload;
  ASSERT_TRUE(chunk->corruption);
  EXPECT_EQ(chunk->corruption->stream, "alpha");
  EXPECT_EQ(chunk->corruption->seq, 1u);
  const auto report = j.verify();
  ASSERT_EQ(report.corruptions.size(), 1u);
  EXPECT_EQ(report.corruptions[0].stream, "alpha");
  EXPECT_EQ(report.corruptions[0].seq, 1u);
}

TEST(JournalDamageTest, AJournalOfVersionOneRecordsIsReadAndAppendedTo) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(j.append_wait("old", "old " + std::to_string(i)));
  }
  for (std::uint64_t seq = 1; seq <= 3; ++seq)
    damage_journal_record(dir.path(), "old", seq, [&](std::string& v) { make_version_1(v, seq); });
  ASSERT_EQ(raw_record(dir, "old", 2)[4], 1);

  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_EQ(j.last_seq("old").value(), 3u);
  ASSERT_EQ(j.append_wait("old", "new 4").value(), 4u);
  auto chunk = j.read("old", 1);
  ASSERT_TRUE(chunk);
  EXPECT_FALSE(chunk->corruption);
  std::vector<std::string> payloads;
  for (const auto& r : chunk->records) payloads.push_back(r.payload);
  EXPECT_EQ(payloads, (std::vector<std::string>{"old 1", "old 2", "old 3", "new 4"}));
  EXPECT_TRUE(j.seq_at_time("old", 0));
  const auto report = j.verify();
  EXPECT_EQ(report.records, 4u);
  EXPECT_TRUE(report.corruptions.empty());
}

TEST(JournalDamageTest, AVersionOneRecordWithAFlippedBitIsStillRefused) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    ASSERT_TRUE(j.append_wait("old", "old 1"));
  }
  damage_journal_record(dir.path(), "old", 1, [&](std::string& v) {
    make_version_1(v, 1);
    v.back() ^= 0x04;
  });
  auto j = journal::open(dir.path(), fast_journal_options());
  auto chunk = j.read("old", 1);
  ASSERT_TRUE(chunk);
  EXPECT_TRUE(chunk->records.empty());
  ASSERT_TRUE(chunk->corruption);
  EXPECT_EQ(chunk->corruption->what, "CRC mismatch");
}

// ---- stored accounting that disagrees with the records

void behind_the_journals_back(const temp_dir& dir, const std::function<void(MDB_txn*)>& fn) {
  fabric::testing::write_behind_journal(dir.path(), fn);
}

MDB_dbi dbi_of(MDB_txn* txn, const char* name) {
  MDB_dbi dbi = 0;
  EXPECT_EQ(mdb_dbi_open(txn, name, 0, &dbi), 0) << name;
  return dbi;
}

void put_u64(MDB_txn* txn, const char* db, std::string key, std::uint64_t v) {
  char bytes[8];
  fabric::detail::store_le(v, bytes);
  MDB_val k{key.size(), key.data()};
  MDB_val d{8, bytes};
  EXPECT_EQ(mdb_put(txn, dbi_of(txn, db), &k, &d, 0), 0);
}

void append_orders(const temp_dir& dir, int count) {
  auto j = journal::open(dir.path(), fast_journal_options());
  for (int i = 1; i <= count; ++i) ASSERT_TRUE(j.append_wait("orders", "order " + std::to_string(i)));
}

std::string all_damage(const fabric::journal_verify_report& r) {
  std::string text;
  for (const auto& d : r.damage) text += "[" + d.stream + "] " + d.what + "\n";
  return text;
}

TEST(JournalVerifyAccountingTest, ARecordLostBehindTheJournalsBackIsReported) {
  temp_dir dir;
  append_orders(dir, 5);
  behind_the_journals_back(dir, [](MDB_txn* txn) {
    std::byte key[8];
    fabric::journal_detail::encode_seq_key(3, key);
    MDB_val k{8, key};
    EXPECT_EQ(mdb_del(txn, dbi_of(txn, "s/orders"), &k, nullptr), 0);
  });
  auto j = journal::open(dir.path(), fast_journal_options());
  const auto report = j.verify();
  EXPECT_EQ(report.records, 4u);
  EXPECT_TRUE(report.corruptions.empty());
  ASSERT_EQ(report.damage.size(), 1u) << all_damage(report);
  EXPECT_EQ(report.damage[0].stream, "orders");
  // The payload bytes the journal keeps for the stream no longer match its records.
  EXPECT_NE(report.damage[0].what.find("35 payload bytes"), std::string::npos) << report.damage[0].what;
  EXPECT_NE(report.damage[0].what.find("28"), std::string::npos) << report.damage[0].what;
  EXPECT_FALSE(report.clean());
}

TEST(JournalVerifyAccountingTest, RecordsPastTheStreamsLastSequenceAreReported) {
  temp_dir dir;
  append_orders(dir, 5);
  behind_the_journals_back(dir, [](MDB_txn* txn) { put_u64(txn, "x/stream-last", "orders", 3); });
  auto j = journal::open(dir.path(), fast_journal_options());
  const auto report = j.verify();
  EXPECT_EQ(report.records, 5u);
  ASSERT_EQ(report.damage.size(), 1u) << all_damage(report);
  EXPECT_EQ(report.damage[0].stream, "orders");
  EXPECT_NE(report.damage[0].what.find("seq 5"), std::string::npos) << report.damage[0].what;
}

TEST(JournalVerifyAccountingTest, AccountsOfAStreamThatIsMissingAreReported) {
  temp_dir dir;
  append_orders(dir, 2);
  behind_the_journals_back(dir, [](MDB_txn* txn) {
    put_u64(txn, "x/stream-last", "ghost", 7);
    put_u64(txn, "x/stream-bytes", "ghost", 70);
  });
  auto j = journal::open(dir.path(), fast_journal_options());
  const auto report = j.verify();
  ASSERT_EQ(report.damage.size(), 2u) << all_damage(report);
  EXPECT_EQ(report.damage[0].stream, "ghost");
  EXPECT_NE(report.damage[0].what.find("no such stream"), std::string::npos) << report.damage[0].what;
}

TEST(JournalVerifyAccountingTest, AVersionOneRecordAfterVersionTwoOnesIsReported) {
  temp_dir dir;
  append_orders(dir, 3);
  // The older format is never written any more: a version 1 record after version 2 ones was put
  // there by something other than the journal, and the older rule does not bind it to its stream.
  damage_journal_record(dir.path(), "orders", 3, [](std::string& v) { make_version_1(v, 3); });
  damage_journal_record(dir.path(), "orders", 1, [](std::string& v) { make_version_1(v, 1); });
  auto j = journal::open(dir.path(), fast_journal_options());
  const auto report = j.verify();
  EXPECT_EQ(report.records, 2u);
  ASSERT_EQ(report.corruptions.size(), 1u);
  EXPECT_EQ(report.corruptions[0].seq, 3u);
  EXPECT_NE(report.corruptions[0].what.find("version 1"), std::string::npos) << report.corruptions[0].what;
}

TEST(JournalVerifyAccountingTest, ACleanJournalWithEveryKindOfContentVerifiesClean) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    for (int i = 1; i <= 300; ++i) ASSERT_TRUE(j.append_wait("orders", std::string(i % 10 == 0 ? 5000 : 20, 'o')));
    ASSERT_TRUE(j.append_wait("short", "x", std::chrono::hours(1)));
    ASSERT_TRUE(j.schedule("later", "y", INT64_MAX / 2));
    ASSERT_TRUE(j.set_retention("orders", {100, 0, {}, {}}));
    ASSERT_TRUE(j.append_wait("orders", "one more"));
    ASSERT_TRUE(j.transact([](fabric::journal_txn& t) {
      t.put("table", "key", "value");
      t.set_cursor("c", 7);
      (void)t.mark_seen({"producer", "orders", 1, {}});
      t.dead_letter("orders", 301, "test", 1);
    }));
    const auto report = j.verify();
    EXPECT_TRUE(report.clean()) << all_damage(report);
    EXPECT_EQ(report.streams, 2u);
  }
  auto j = journal::open(dir.path(), fast_journal_options());
  const auto report = j.verify();
  EXPECT_TRUE(report.clean()) << all_damage(report);
  EXPECT_EQ(report.records, j.stream_infos().value()[0].records + j.stream_infos().value()[1].records);
}

// ---- damaged data files

// What journal::open did with a journal, run in a child process so that a crash is reported
// rather than taking the test down. A journal that opened is verified there too.
struct open_outcome {
  enum kind { opened, refused, other_exception, crashed, hung } what = hung;
  std::string message;  // the exception's text, or how the child died
  bool verified_clean = false;
};

std::string describe(const open_outcome& o) {
  static const char* const names[] = {"opened", "refused", "threw something else", "crashed", "hung"};
  return std::string(names[o.what]) + (o.message.empty() ? "" : ": " + o.message);
}

open_outcome open_in_child(const std::filesystem::path& dir, bool read_only) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return {open_outcome::hung, "pipe failed"};
  const pid_t child = ::fork();
  if (child < 0) return {open_outcome::hung, "fork failed"};
  if (child == 0) {
    ::close(pipe_fds[0]);
    std::string said;
    try {
      fabric::journal_options o = fast_journal_options();
      o.read_only = read_only;
      auto j = journal::open(dir, o);
      said = j.verify().clean() ? "C" : "O";
    } catch (const fabric::error& e) {
      said = std::string("R") + e.what();
    } catch (const std::exception& e) {
      said = std::string("X") + e.what();
    }
    const ssize_t written = ::write(pipe_fds[1], said.data(), said.size());
    ::_exit(written == static_cast<ssize_t>(said.size()) ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  // The child closes its end only by exiting: end of file means it is gone or going.
  std::string said;
  bool ended = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!ended) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    const ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
    if (n <= 0) ended = true;
    else said.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  if (!ended) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    return {open_outcome::hung, "no answer within 30 s"};
  }
  ::waitpid(child, &status, 0);
  if (WIFSIGNALED(status)) return {open_outcome::crashed, std::string("signal ") + ::strsignal(WTERMSIG(status))};
  if (said.empty()) return {open_outcome::other_exception, "the child said nothing"};
  const std::string message = said.substr(1);
  switch (said[0]) {
    case 'O': return {open_outcome::opened, message, false};
    case 'C': return {open_outcome::opened, message, true};
    case 'R': return {open_outcome::refused, message};
    default: return {open_outcome::other_exception, message};
  }
}

class JournalDamagedFileTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    subject_ = new temp_dir;
    fabric::testing::build_damage_subject(subject_->path());
  }
  static void TearDownTestSuite() {
    delete subject_;
    subject_ = nullptr;
  }
  static temp_dir* subject_;
};

temp_dir* JournalDamagedFileTest::subject_ = nullptr;

TEST_F(JournalDamagedFileTest, TheUndamagedSubjectOpensInBothModes) {
  temp_dir copy;
  fabric::testing::write_damaged_copy(subject_->path(), copy.path(), {"none", false, "", [](std::string&, const auto&) {}});
  for (const bool read_only : {true, false}) {
    const auto outcome = open_in_child(copy.path(), read_only);
    EXPECT_EQ(outcome.what, open_outcome::opened) << describe(outcome);
    EXPECT_TRUE(outcome.verified_clean);
  }
}

TEST_F(JournalDamagedFileTest, OpenRefusesAShortFileOrBadMetaAndVerifyFindsTheRestWithoutCrashing) {
  for (const auto& damage : fabric::testing::damaged_file_cases()) {
    for (const bool read_only : {true, false}) {
      SCOPED_TRACE(damage.name + (read_only ? " (read-only)" : " (for writing)"));
      temp_dir copy;
      fabric::testing::write_damaged_copy(subject_->path(), copy.path(), damage);
      const auto outcome = open_in_child(copy.path(), read_only);
      if (damage.refused_at_open) {
        EXPECT_EQ(outcome.what, open_outcome::refused) << describe(outcome);
        EXPECT_NE(outcome.message.find("data.mdb"), std::string::npos) << outcome.message;
        EXPECT_NE(outcome.message.find(damage.says), std::string::npos) << outcome.message;
      } else {
        EXPECT_TRUE(outcome.what == open_outcome::opened || outcome.what == open_outcome::refused) << describe(outcome);
        // Damage open did not read is verify's to find; only pages past the last one in use
        // (what an interrupted commit leaves behind) are not damage.
        const bool harmless = damage.name == "grown with garbage";
        if (outcome.what == open_outcome::opened) {
          EXPECT_EQ(outcome.verified_clean, harmless) << "verify";
        }
      }
    }
  }
}

}  // namespace
