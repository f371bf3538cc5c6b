// fabric::perf::run field access and the workload key that pairs fabric with its baseline.
#include "harness/record.hpp"

#include <gtest/gtest.h>

namespace fabric::perf {
namespace {

run thr(std::string impl, std::int64_t size, double rate) {
  run r;
  r.set("bench", "thr").set("impl", std::move(impl)).set("pattern", "push_pull");
  r.set("transport", "tcp").set("size", size).set("reps", std::int64_t{5}).set("msgs_per_s", rate);
  r.set("min_msgs_per_s", rate * 0.9).set("max_msgs_per_s", rate * 1.1);
  return r;
}

TEST(Record, SetAppendsNewKeysInOrder) {
  run r;
  r.set("b", std::int64_t{1}).set("a", 2.5).set("c", "x");
  ASSERT_EQ(r.fields.size(), 3U);
  EXPECT_EQ(r.fields[0].first, "b");
  EXPECT_EQ(r.fields[1].first, "a");
  EXPECT_EQ(r.fields[2].first, "c");
}

TEST(Record, SetReplacesExistingValueInPlace) {
  run r;
  r.set("a", std::int64_t{1}).set("b", std::int64_t{2}).set("a", "now text");
  ASSERT_EQ(r.fields.size(), 2U);
  EXPECT_EQ(r.fields[0].first, "a");
  EXPECT_EQ(r.text("a"), "now text");
}

TEST(Record, AccessorsCheckTheType) {
  run r;
  r.set("i", std::int64_t{7}).set("d", 0.5).set("s", "text");
  EXPECT_EQ(r.number("i"), 7.0);
  EXPECT_EQ(r.number("d"), 0.5);
  EXPECT_FALSE(r.number("s").has_value());
  EXPECT_EQ(r.text("s"), "text");
  EXPECT_FALSE(r.text("i").has_value());
  EXPECT_EQ(r.get("missing"), nullptr);
  EXPECT_FALSE(r.number("missing").has_value());
  EXPECT_FALSE(r.text("missing").has_value());
}

TEST(Record, WorkloadKeyIgnoresImplAndMeasurements) {
  EXPECT_EQ(workload_key(thr("fabric", 64, 1e6)), workload_key(thr("raw", 64, 2e6)));
  EXPECT_NE(workload_key(thr("fabric", 64, 1e6)), workload_key(thr("fabric", 256, 1e6)));
}

TEST(Record, WorkloadKeyIgnoresFieldOrder) {
  run a;
  a.set("bench", "lat").set("pattern", "req_rep").set("mode", "closed");
  run b;
  b.set("mode", "closed").set("impl", "raw").set("pattern", "req_rep").set("bench", "lat");
  EXPECT_EQ(workload_key(a), workload_key(b));
}

TEST(Record, WorkloadKeyTreatsIntegralDoublesLikeIntegers) {
  run a;
  a.set("bench", "thr").set("size", std::int64_t{64});
  run b;
  b.set("bench", "thr").set("size", 64.0);
  EXPECT_EQ(workload_key(a), workload_key(b));
}

TEST(Record, WorkloadKeyCannotBeFooledBySeparatorsInValues) {
  run a;
  a.set("bench", "x;pattern=y");
  run b;
  b.set("bench", "x").set("pattern", "y");
  EXPECT_NE(workload_key(a), workload_key(b));
}

TEST(Record, MeasurementKeysFollowTheNamingConvention) {
  for (const char* key : {"impl", "reps", "count", "msgs_per_s", "mb_per_s", "p50_us", "p999_us",
                          "max_us", "min_msgs_per_s", "fsync_ns", "elapsed_s", "cpu_pct",
                          "batch", "avg_batch"}) {
    EXPECT_TRUE(is_measurement_key(key)) << key;
  }
  for (const char* key : {"bench", "pattern", "transport", "size", "mode", "rate", "durability",
                          "op", "producers", "window", "batches"}) {
    EXPECT_FALSE(is_measurement_key(key)) << key;
  }
}

// A journal run records the batch size it achieved and its raw LMDB twin the one it was given;
// neither may keep the two apart.
TEST(Record, WorkloadKeyIgnoresJournalBatchSizes) {
  run fabric;
  fabric.set("bench", "journal").set("op", "append").set("mode", "sync").set("producers", std::int64_t{4});
  fabric.set("size", std::int64_t{256}).set("impl", "fabric").set("avg_batch", 37.5);
  run raw;
  raw.set("bench", "journal").set("op", "append").set("mode", "sync").set("producers", std::int64_t{4});
  raw.set("size", std::int64_t{256}).set("impl", "raw_lmdb").set("batch", 37.5);
  EXPECT_EQ(workload_key(fabric), workload_key(raw));
}

}  // namespace
}  // namespace fabric::perf
