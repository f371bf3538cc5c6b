// Tests Titanic replication's codecs (docs/ha.md, section 9.2): FTR/1's exact frames, every
// command's round trip, malformed input refused, and a replication log entry's ops: round trip,
// every truncation refused, and random mutations that never crash and decode only to what
// encodes back to the same bytes.
#include "reliability/titanic_replication.hpp"
#include "reliability/titanic_store.hpp"

#include "support/raw_frames.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace fabric::titanic {
namespace {

using frames = std::vector<std::string>;
using fabric::testing::u64;
using repl::log_point;

std::string octet(std::uint8_t v) { return std::string(1, static_cast<char>(v)); }
std::string u32(std::uint32_t v) {
  std::string s;
  store::put_u32(s, v);
  return s;
}

tsp::uuid sample_id(std::uint8_t seed) {
  tsp::uuid id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = static_cast<std::uint8_t>(seed + i);
  return id;
}

std::vector<tsp::request_change> sample_changes() {
  std::vector<tsp::request_change> c;
  tsp::request_change stored{.kind = tsp::change_kind::stored, .id = sample_id(1), .key = "key", .service = "echo"};
  stored.body.push_back(std::string_view("a"));
  stored.body.push_back(std::string_view(""));
  c.push_back(std::move(stored));
  c.push_back({.kind = tsp::change_kind::attempt, .id = sample_id(1), .attempts = 3});
  tsp::request_change replied{.kind = tsp::change_kind::replied, .id = sample_id(1)};
  replied.body.push_back(std::string_view("answer"));
  c.push_back(std::move(replied));
  c.push_back({.kind = tsp::change_kind::given_up, .id = sample_id(2), .attempts = 5, .reason = std::string(300, 'r')});
  c.push_back({.kind = tsp::change_kind::closed, .id = sample_id(3)});
  c.push_back({.kind = tsp::change_kind::removed, .id = sample_id(4), .index = std::string(24, 'i')});
  return c;
}

TEST(Ftr, BuildersWriteTheFramesOfTheSpec) {
  EXPECT_EQ(fabric::testing::to_strings(repl::build_fetch({5, 3}, 1024)),
            (frames{"FTR01", octet(1) + u64(5) + u64(3) + u32(1024)}));
  EXPECT_EQ(fabric::testing::to_strings(repl::build_records({9, 4})), (frames{"FTR01", octet(2) + u64(9) + u64(4)}));
  EXPECT_EQ(fabric::testing::to_strings(repl::build_resync({9, 4}, {7, 2})),
            (frames{"FTR01", octet(3) + u64(9) + u64(4) + u64(7) + u64(2)}));
  EXPECT_EQ(fabric::testing::to_strings(repl::build_handoff()), (frames{"FTR01", octet(6)}));
  EXPECT_EQ(fabric::testing::to_strings(repl::build_handed(3, 5)), (frames{"FTR01", octet(7) + u32(3) + u32(5)}));
  EXPECT_EQ(fabric::testing::to_strings(repl::build_snapshot_fetch(std::nullopt)), (frames{"FTR01", octet(4)}));
  const std::string id(store::uuid_key(sample_id(7)));
  EXPECT_EQ(fabric::testing::to_strings(repl::build_snapshot_fetch(sample_id(7))), (frames{"FTR01", octet(4) + id}));
  EXPECT_EQ(fabric::testing::to_strings(repl::build_snapshot({2, 1}, true, sample_id(7))),
            (frames{"FTR01", octet(5) + u64(2) + u64(1) + octet(1) + id}));
}

TEST(Ftr, EveryCommandRoundTrips) {
  const auto f = std::get<repl::fetch_fields>(repl::parse(repl::build_fetch({5, 3}, 77)));
  EXPECT_EQ(f.at, (log_point{5, 3}));
  EXPECT_EQ(f.max_bytes, 77u);
  message records = repl::build_records({9, 4});
  records.push_back(store::be64(9) + "ops");
  EXPECT_EQ(std::get<repl::records_fields>(repl::parse(records)).head, (log_point{9, 4}));
  std::uint64_t pos = 0;
  std::string_view ops;
  ASSERT_TRUE(repl::split_entry(records.view(2), pos, ops));
  EXPECT_EQ(pos, 9u);
  EXPECT_EQ(ops, "ops");
  const auto rs = std::get<repl::resync_fields>(repl::parse(repl::build_resync({1, 2}, {0, 0})));
  EXPECT_EQ(rs.head, (log_point{1, 2}));
  EXPECT_EQ(rs.agree, (log_point{0, 0}));
  message handoff = repl::build_handoff();
  handoff.push_back(std::string_view("ops"));
  EXPECT_TRUE(std::holds_alternative<repl::handoff_fields>(repl::parse(handoff)));
  const auto h = std::get<repl::handed_fields>(repl::parse(repl::build_handed(2, 2)));
  EXPECT_EQ(h.held, 2u);
  EXPECT_EQ(h.total, 2u);
  EXPECT_FALSE(std::get<repl::snapshot_fetch_fields>(repl::parse(repl::build_snapshot_fetch(std::nullopt))).after);
  EXPECT_EQ(std::get<repl::snapshot_fetch_fields>(repl::parse(repl::build_snapshot_fetch(sample_id(3)))).after,
            sample_id(3));
  const auto s = std::get<repl::snapshot_fields>(repl::parse(repl::build_snapshot({4, 2}, false, std::nullopt)));
  EXPECT_EQ(s.start, (log_point{4, 2}));
  EXPECT_FALSE(s.done);
  EXPECT_FALSE(s.last);
}

TEST(Ftr, MalformedMessagesAreRefused) {
  const std::vector<frames> bad = {
      {},
      {"FTR01"},
      {"FTR02", octet(4)},
      {"FTR01", ""},
      {"FTR01", octet(9)},
      {"FTR01", octet(1) + u64(5)},                                 // fetch cut short
      {"FTR01", octet(1) + u64(5) + u64(3) + u32(1) + "x"},         // fetch with more
      {"FTR01", octet(1) + u64(5) + u64(3) + u32(1), "extra"},      // fetch with a frame more
      {"FTR01", octet(3) + u64(1) + u64(1)},                        // resync without its agreement
      {"FTR01", octet(3) + u64(1) + u64(1) + u64(0) + u64(0), "entry"},  // resync carries no entries
      {"FTR01", octet(6) + "x"},                                    // handoff has no fields
      {"FTR01", octet(7) + u32(3) + u32(2)},                        // more held than handed
      {"FTR01", octet(7) + u32(1)},
      {"FTR01", octet(4) + "short"},                                // not a UUID
      {"FTR01", octet(5) + u64(1) + u64(1) + octet(2)},             // done is 0 or 1
      {"FTR01", octet(5) + u64(1) + u64(1) + octet(1) + "short"},
  };
  for (const auto& f : bad) {
    EXPECT_TRUE(std::holds_alternative<std::monostate>(repl::parse(fabric::testing::message_of(f))))
        << ::testing::PrintToString(f);
  }
  std::uint64_t pos = 0;
  std::string_view ops;
  EXPECT_FALSE(repl::split_entry("short", pos, ops));
  EXPECT_FALSE(repl::split_entry(store::be64(0) + "x", pos, ops));  // positions start at 1
}

TEST(Ftr, AnEntryRoundTripsAndEveryTruncationIsRefused) {
  const auto changes = sample_changes();
  const std::string bytes = store::encode_ops(12, -5, changes);
  store::ops o;
  ASSERT_TRUE(store::decode_ops(bytes, o));
  EXPECT_EQ(o.term, 12u);
  EXPECT_EQ(o.wall_ns, -5);
  ASSERT_EQ(o.changes.size(), changes.size());
  for (std::size_t i = 0; i < changes.size(); ++i) {
    EXPECT_EQ(o.changes[i].kind, changes[i].kind);
    EXPECT_EQ(o.changes[i].id, changes[i].id);
    EXPECT_EQ(o.changes[i].attempts, changes[i].attempts);
    EXPECT_EQ(o.changes[i].key, changes[i].key);
    EXPECT_EQ(o.changes[i].service, changes[i].service);
    EXPECT_EQ(o.changes[i].reason, changes[i].reason);
    EXPECT_EQ(o.changes[i].index, changes[i].index);
    EXPECT_EQ(fabric::testing::to_strings(o.changes[i].body), fabric::testing::to_strings(changes[i].body));
  }
  EXPECT_EQ(store::ops_term(bytes), 12u);
  EXPECT_EQ(store::encode_ops(o.term, o.wall_ns, o.changes), bytes);
  for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(store::decode_ops(bytes.substr(0, n), o)) << n;
  EXPECT_FALSE(store::decode_ops(bytes + "x", o));
  EXPECT_EQ(store::ops_term("x"), 0u);
}

TEST(Ftr, AnEntryWithALyingCountOrAnUnknownKindIsRefused) {
  std::string bytes = store::encode_ops(1, 0, sample_changes());
  store::ops o;
  std::string lying = bytes;
  lying.replace(17, 4, u32(0xFFFFFFFF));
  EXPECT_FALSE(store::decode_ops(lying, o));
  std::string kind = bytes;
  kind[21] = 9;
  EXPECT_FALSE(store::decode_ops(kind, o));
  // A stored change must name its service.
  std::vector<tsp::request_change> nameless;
  nameless.push_back({.kind = tsp::change_kind::stored, .id = sample_id(1)});
  EXPECT_FALSE(store::decode_ops(store::encode_ops(1, 0, nameless), o));
}

TEST(Ftr, RandomMutationsNeverCrashAndDecodeOnlyCanonicalEntries) {
  const std::string bytes = store::encode_ops(3, 42, sample_changes());
  std::mt19937 rng(11);
  store::ops o;
  int decoded = 0;
  for (int i = 0; i < 20'000; ++i) {
    std::string m = bytes;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0: m[at] = static_cast<char>(rng()); break;
        case 1: m.erase(at, 1 + rng() % 8); break;
        default: m.insert(at, 1, static_cast<char>(rng())); break;
      }
      if (m.empty()) m = "x";
    }
    if (store::decode_ops(m, o)) {
      ++decoded;
      EXPECT_EQ(store::encode_ops(o.term, o.wall_ns, o.changes), m);
    }
  }
  EXPECT_GT(decoded, 0);
}

}  // namespace
}  // namespace fabric::titanic
