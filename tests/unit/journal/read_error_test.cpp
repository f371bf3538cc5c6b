// Tests that the journal's reads report failures as errors: a read that could not look never
// answers "absent", "empty" or "not seen". Failures are real ones: every LMDB reader slot taken
// by another process, a damaged stored value, LMDB's table of open databases full.
#include <fabric/journal.hpp>

#include "journal/catalog.hpp"
#include "journal/lmdb.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iterator>
#include <string>

namespace {

using fabric::errc;
using fabric::journal;
using fabric::journal_options;
using fabric::journal_txn;
using fabric::journal_detail::lmdb_error;
using fabric::testing::fast_journal_options;
using fabric::testing::temp_dir;
using fabric::testing::wait_bound;
using fabric::testing::write_behind_journal;

// Takes every free reader slot of the LMDB environment at `dir` from a child process, so that no
// read transaction can begin there (MDB_READERS_FULL), until released: how a host with too many
// readers looks to the journal. The child frees its slots as it closes the environment.
class reader_slot_hog {
 public:
  explicit reader_slot_hog(const std::filesystem::path& dir) {
    int ready[2] = {-1, -1};
    int release[2] = {-1, -1};
    if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(release, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      ::close(release[1]);
      char full = 0;
      MDB_env* env = nullptr;
      if (mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 64) == 0 &&
          mdb_env_open(env, dir.c_str(), MDB_NOTLS | MDB_RDONLY, 0640) == 0) {
        for (;;) {
          MDB_txn* t = nullptr;
          const int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &t);
          if (rc == MDB_READERS_FULL) full = 1;
          if (rc != 0) break;
        }
      }
      [[maybe_unused]] const ssize_t told = ::write(ready[1], &full, 1);
      char c = 0;
      while (::read(release[0], &c, 1) > 0) {
      }
      if (env != nullptr) mdb_env_close(env);
      ::_exit(0);
    }
    ::close(ready[1]);
    ::close(release[0]);
    release_fd_ = release[1];
    pollfd p{ready[0], POLLIN, 0};
    char full = 0;
    if (pid_ > 0 && ::poll(&p, 1, static_cast<int>(wait_bound.count())) == 1 && ::read(ready[0], &full, 1) == 1)
      holding_ = full == 1;
    ::close(ready[0]);
  }
  ~reader_slot_hog() { release(); }
  reader_slot_hog(const reader_slot_hog&) = delete;
  reader_slot_hog& operator=(const reader_slot_hog&) = delete;

  /// Every slot is taken.
  bool holding() const noexcept { return holding_; }

  /// Lets the child close the environment (freeing its slots) and reaps it.
  void release() {
    if (release_fd_ >= 0) ::close(release_fd_);
    release_fd_ = -1;
    if (pid_ > 0) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    holding_ = false;
  }

 private:
  pid_t pid_ = -1;
  int release_fd_ = -1;
  bool holding_ = false;
};

const std::error_code readers_full = lmdb_error(MDB_READERS_FULL);

// A journal with something in every place a read looks.
void fill(journal& j) {
  ASSERT_TRUE(j.append_wait("s", "x"));
  ASSERT_TRUE(j.schedule("s", "later", INT64_MAX));
  ASSERT_TRUE(j.transact([](journal_txn& t) {
    t.put("t", "k", "v");
    t.set_cursor("c", 1);
    EXPECT_EQ(t.mark_seen({"p", "s", 1, {}}), fabric::dedup_verdict::fresh);
    EXPECT_EQ(t.dead_letter("s", 1, "r", 1), 1u);
  }));
  ASSERT_TRUE(j.append_wait("s", "y"));
}

TEST(JournalReadErrorTest, EveryReadReportsAnErrorWhenItCannotBeginAReadTransaction) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  fill(j);
  reader_slot_hog hog(dir.path());
  ASSERT_TRUE(hog.holding());

  EXPECT_EQ(j.cursor("c").error(), readers_full);
  EXPECT_EQ(j.get("t", "k").error(), readers_full);
  EXPECT_EQ(j.table_entries("t").error(), readers_full);
  EXPECT_EQ(j.seen({"p", "s", 1, {}}).error(), readers_full);
  EXPECT_EQ(j.dead_letters().error(), readers_full);
  EXPECT_EQ(j.scheduled_count().error(), readers_full);
  EXPECT_EQ(j.stream_infos().error(), readers_full);
  EXPECT_EQ(j.read("s", 1).error(), readers_full);
  EXPECT_EQ(j.seq_at_time("s", 0).error(), readers_full);
  // The writer keeps these in memory, so they need no read transaction.
  EXPECT_EQ(j.last_seq("s").value(), 2u);
  EXPECT_EQ(j.streams().value(), std::vector<std::string>{"s"});

  hog.release();
  EXPECT_EQ(j.cursor("c").value(), 1u);
  EXPECT_EQ(j.get("t", "k").value(), "v");
  EXPECT_EQ(j.table_entries("t").value().size(), 1u);
  EXPECT_TRUE(j.seen({"p", "s", 1, {}}).value());
  EXPECT_EQ(j.dead_letters().value().size(), 1u);
}

TEST(JournalReadErrorTest, AReadOnlyJournalReportsAnErrorForWhatItReadsFromDisk) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    fill(j);
    ASSERT_TRUE(j.set_retention("s", {.max_records = 10}));
  }
  auto reader = journal::open(dir.path(), {.read_only = true});
  reader_slot_hog hog(dir.path());
  ASSERT_TRUE(hog.holding());

  EXPECT_EQ(reader.last_seq("s").error(), readers_full);
  EXPECT_EQ(reader.streams().error(), readers_full);
  EXPECT_EQ(reader.retention("s").error(), readers_full);
  EXPECT_EQ(reader.cursor("c").error(), readers_full);
  EXPECT_EQ(reader.seen({"p", "s", 1, {}}).error(), readers_full);
  EXPECT_EQ(reader.stream_infos().error(), readers_full);
  EXPECT_EQ(reader.table_entries("t").error(), readers_full);

  hog.release();
  EXPECT_EQ(reader.last_seq("s").value(), 2u);
  EXPECT_EQ(reader.table_entries("t").value(), (std::vector<std::pair<std::string, std::string>>{{"k", "v"}}));
  EXPECT_EQ(reader.retention("s").value()->max_records, 10u);
}

TEST(JournalReadErrorTest, SeenNeverSaysNotSeenWhenItCouldNotLook) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.transact([](journal_txn& t) { (void)t.mark_seen({"p", "s", 1, {}}); }));
  reader_slot_hog hog(dir.path());
  ASSERT_TRUE(hog.holding());
  // Seen or not, an answer is only given when the journal could be read.
  const auto marked = j.seen({"p", "s", 1, {}});
  const auto unmarked = j.seen({"p", "s", 2, {}});
  const auto by_id = j.seen({"p", "s", 0, fabric::message_id{{1}}});
  EXPECT_FALSE(marked.has_value());
  EXPECT_FALSE(unmarked.has_value());
  EXPECT_FALSE(by_id.has_value());
}

TEST(JournalReadErrorTest, ADamagedDedupMarkIsAnErrorNotFresh) {
  temp_dir dir;
  { auto j = journal::open(dir.path(), fast_journal_options()); }
  write_behind_journal(dir.path(), [](MDB_txn* t) {
    MDB_dbi marks = 0;
    ASSERT_EQ(mdb_dbi_open(t, "x/dedup-marks", 0, &marks), 0);
    const std::string key = fabric::journal_detail::dedup_mark_key({"p", "s", 1, {}});
    const std::string short_value(15, '\x01');
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v{short_value.size(), const_cast<char*>(short_value.data())};
    ASSERT_EQ(mdb_put(t, marks, &k, &v, 0), 0);
  });
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_TRUE(j.seen({"p", "s", 7, {}}).is(errc::malformed));
  // mark_seen neither answers fresh nor keeps anything: the transaction fails.
  try {
    (void)j.transact([](journal_txn& t) {
      (void)t.mark_seen({"p", "s", 7, {}});
      t.set_cursor("after", 1);
    });
    ADD_FAILURE() << "mark_seen answered on a damaged mark";
  } catch (const fabric::error& e) {
    EXPECT_EQ(e.code(), fabric::make_error_code(errc::malformed));
  }
  EXPECT_FALSE(j.cursor("after").value());
  // Other producers' marks are unaffected.
  EXPECT_FALSE(j.seen({"q", "s", 1, {}}).value());
}

TEST(JournalReadErrorTest, ADamagedCursorIsAnErrorNotAbsent) {
  temp_dir dir;
  { auto j = journal::open(dir.path(), fast_journal_options()); }
  write_behind_journal(dir.path(), [](MDB_txn* t) {
    MDB_dbi cursors = 0;
    ASSERT_EQ(mdb_dbi_open(t, "x/cursors", 0, &cursors), 0);
    MDB_val k{1, const_cast<char*>("c")};
    MDB_val v{3, const_cast<char*>("abc")};
    ASSERT_EQ(mdb_put(t, cursors, &k, &v, 0), 0);
  });
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_TRUE(j.cursor("c").is(errc::malformed));
  ASSERT_TRUE(j.transact([](journal_txn& t) {
    EXPECT_TRUE(t.cursor("c").is(errc::malformed));
    t.set_cursor("c", 5);  // the damage is the application's to repair
  }));
  EXPECT_EQ(j.cursor("c").value(), 5u);
}

TEST(JournalReadErrorTest, ATransactionWhoseReadFailedDoesNotCommit) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.max_streams = 1;
  o.max_tables = 1;
  // Exactly as many databases as LMDB's table of open databases holds: looking for one more
  // fails in LMDB (MDB_DBS_FULL) rather than finding it absent.
  const std::size_t streams = o.max_streams + o.max_tables + fabric::journal_detail::internal_database_count -
                              std::size(fabric::journal_detail::internal_databases);
  {
    journal_options roomy = fast_journal_options();
    auto j = journal::open(dir.path(), roomy);
    for (std::size_t i = 0; i < streams; ++i) ASSERT_TRUE(j.append_wait("s" + std::to_string(i), "x"));
  }
  auto j = journal::open(dir.path(), o);
  std::error_code read_error;
  const auto done = j.transact([&](journal_txn& t) {
    const auto value = t.get("unknown", "k");
    read_error = value.error();
    t.set_cursor("acted-on-a-failed-read", 1);
  });
  EXPECT_EQ(read_error, lmdb_error(MDB_DBS_FULL));
  EXPECT_EQ(done.error(), lmdb_error(MDB_DBS_FULL));
  EXPECT_FALSE(j.cursor("acted-on-a-failed-read").value());
}

}  // namespace
