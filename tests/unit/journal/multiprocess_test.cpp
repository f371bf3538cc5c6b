// Tests of how a journal is shared between processes: one writer at a time, any number of
// read-only readers that see what the writer commits.
#include <fabric/journal.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace {

using fabric::durability;
using fabric::errc;
using fabric::journal;
using fabric::journal_options;
using fabric::testing::fast_journal_options;
using fabric::testing::temp_dir;

journal_options reader_options() {
  journal_options o;
  o.read_only = true;
  return o;
}

// A child process holding the journal open for writing. It appends one record to `stream`
// each time the parent writes a byte to `commands`, answers each with a byte on `acks`, and
// exits when `commands` closes.
class writer_process {
 public:
  explicit writer_process(const std::filesystem::path& dir) {
    int to_child[2];
    int from_child[2];
    if (::pipe(to_child) != 0 || ::pipe(from_child) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(to_child[1]);
      ::close(from_child[0]);
      try {
        auto j = journal::open(dir, fast_journal_options());
        char ready = 'r';
        if (::write(from_child[1], &ready, 1) != 1) ::_exit(1);
        char command = 0;
        int n = 0;
        while (::read(to_child[0], &command, 1) == 1) {
          const std::string stream = command == 'n' ? "new-stream" : "s";
          if (!j.append_wait(stream, "from the writer " + std::to_string(++n))) ::_exit(2);
          if (::write(from_child[1], &command, 1) != 1) ::_exit(1);
        }
      } catch (...) {
        ::_exit(3);
      }
      ::_exit(0);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    commands_ = to_child[1];
    acks_ = from_child[0];
    char ready = 0;
    ready_ = ::read(acks_, &ready, 1) == 1;
  }
  ~writer_process() {
    if (commands_ >= 0) ::close(commands_);
    if (pid_ > 0) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (acks_ >= 0) ::close(acks_);
  }
  bool ready() const { return ready_; }
  // Asks the writer for one append ('s' to stream "s", 'n' to "new-stream") and waits for it.
  bool append(char command) {
    char ack = 0;
    return ::write(commands_, &command, 1) == 1 && ::read(acks_, &ack, 1) == 1;
  }

 private:
  pid_t pid_ = -1;
  int commands_ = -1;
  int acks_ = -1;
  bool ready_ = false;
};

TEST(JournalSharingTest, ASecondWritingProcessIsRefused) {
  temp_dir dir;
  { auto j = journal::open(dir.path(), fast_journal_options()); }
  writer_process writer(dir.path());
  ASSERT_TRUE(writer.ready());
  try {
    auto j = journal::open(dir.path(), fast_journal_options());
    FAIL() << "two processes opened the journal for writing";
  } catch (const fabric::error& e) {
    EXPECT_EQ(e.code(), fabric::make_error_code(errc::invalid_state));
    EXPECT_NE(std::string(e.what()).find("read_only"), std::string::npos);
  }
}

TEST(JournalSharingTest, AReaderSeesWhatTheWriterCommitsAfterItOpened) {
  temp_dir dir;
  { auto j = journal::open(dir.path(), fast_journal_options()); }
  writer_process writer(dir.path());
  ASSERT_TRUE(writer.ready());
  ASSERT_TRUE(writer.append('s'));
  auto reader = journal::open(dir.path(), reader_options());
  EXPECT_EQ(reader.last_seq("s").value(), 1u);
  ASSERT_TRUE(writer.append('s'));
  ASSERT_TRUE(writer.append('n'));  // a stream created after the reader opened
  EXPECT_EQ(reader.last_seq("s").value(), 2u);
  EXPECT_EQ(reader.streams().value(), (std::vector<std::string>{"new-stream", "s"}));
  auto chunk = reader.read("new-stream", 1);
  ASSERT_TRUE(chunk);
  ASSERT_EQ(chunk->records.size(), 1u);
  EXPECT_EQ(chunk->records[0].payload, "from the writer 3");
  EXPECT_TRUE(reader.verify().corruptions.empty());
}

TEST(JournalSharingTest, AReadOnlyJournalRefusesWritesAndChangesNothing) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    ASSERT_TRUE(j.append_wait("s", "x"));
  }
  const auto size_before = std::filesystem::file_size(dir.path() / "data.mdb");
  auto reader = journal::open(dir.path(), reader_options());
  EXPECT_TRUE(reader.append_wait("s", "y").is(errc::invalid_state));
  EXPECT_TRUE(reader.transact([](fabric::journal_txn&) {}).is(errc::invalid_state));
  EXPECT_TRUE(reader.schedule("s", "z", 1).is(errc::invalid_state));
  EXPECT_TRUE(reader.set_retention("s", {.max_records = 1, .ack_cursors = {}}).is(errc::invalid_state));
  EXPECT_FALSE(reader.seen({"p", "s", 1, {}}).value());
  EXPECT_EQ(reader.last_seq("s").value(), 1u);
  EXPECT_EQ(std::filesystem::file_size(dir.path() / "data.mdb"), size_before);
}

TEST(JournalSharingTest, OpeningANonJournalReadOnlyIsRefusedWithoutCreatingOne) {
  temp_dir dir;
  EXPECT_THROW(journal::open(dir.path() / "nothing-here", reader_options()), fabric::error);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "nothing-here"));
}

}  // namespace
