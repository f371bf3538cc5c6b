// Tests of what the journal does with damage it did not cause: records moved between streams,
// records of the older format, and stored counts that disagree with the records there are.
#include <fabric/journal.hpp>

#include "journal/record.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

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
  for (int i = 0; i < 4; ++i) value[static_cast<std::size_t>(i)] = static_cast<char>(crc >> (8 * i));
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
  EXPECT_EQ(j.last_seq("old"), 3u);
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

}  // namespace
