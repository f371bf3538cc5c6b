// journal::read_views: the records read() returns, handed over as views inside the read
// transaction, under the same bounds and the same checks.
#include <fabric/journal.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using fabric::errc;
using fabric::journal;
using fabric::journal_record_view;
using fabric::testing::fast_journal_options;
using fabric::testing::temp_dir;

struct seen {
  std::uint64_t seq;
  std::string payload;
};

std::vector<seen> collect(const journal& j, std::string_view stream, std::uint64_t from, std::size_t max,
                          std::size_t max_bytes, fabric::result<std::uint64_t>* next = nullptr) {
  std::vector<seen> out;
  auto r = j.read_views(stream, from, max, max_bytes,
                        [&](const journal_record_view& v) { out.push_back({v.seq, std::string(v.payload)}); });
  if (next != nullptr) *next = r;
  return out;
}

TEST(JournalReadViewsTest, HandsOverWhatReadReturnsInOrderWithTheNextSequence) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(j.append_wait("s", "record " + std::to_string(i)));
  fabric::result<std::uint64_t> next = errc::invalid_state;
  const auto got = collect(j, "s", 4, 5, 1 << 20, &next);
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, 9u);
  const auto chunk = j.read("s", 4, 5, 1 << 20);
  ASSERT_TRUE(chunk);
  ASSERT_EQ(got.size(), chunk->records.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, chunk->records[i].seq);
    EXPECT_EQ(got[i].payload, chunk->records[i].payload);
  }
  EXPECT_EQ(chunk->next_seq, *next);
}

TEST(JournalReadViewsTest, StopsAtTheByteBoundAfterTheFirstRecord) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(j.append_wait("s", std::string(100, 'x')));
  fabric::result<std::uint64_t> next = errc::invalid_state;
  EXPECT_EQ(collect(j, "s", 1, 10, 250, &next).size(), 2u);
  EXPECT_EQ(*next, 3u);
  EXPECT_EQ(collect(j, "s", 1, 10, 0, &next).size(), 1u) << "the first record always comes";
}

TEST(JournalReadViewsTest, AnUnknownOrEmptyRangeHandsOverNothing) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  fabric::result<std::uint64_t> next = errc::invalid_state;
  EXPECT_TRUE(collect(j, "nobody", 1, 10, 100, &next).empty());
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, 1u);
  EXPECT_TRUE(collect(j, "", 1, 10, 100, &next).empty());
  EXPECT_TRUE(next.is(errc::invalid_argument));
}

TEST(JournalReadViewsTest, ADamagedRecordIsMalformedAfterTheRecordsBeforeIt) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE(j.append_wait("orders", "order " + std::to_string(i)));
  }
  fabric::testing::damage_journal_record(dir.path(), "orders", 3, [](std::string& v) { v.back() ^= 0x01; });
  auto j = journal::open(dir.path(), fast_journal_options());
  fabric::result<std::uint64_t> next = errc::invalid_state;
  const auto got = collect(j, "orders", 1, 10, 1 << 20, &next);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].payload, "order 2");
  EXPECT_TRUE(next.is(errc::malformed));
}

}  // namespace
