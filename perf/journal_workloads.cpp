// fabric::journal workloads and their raw LMDB twins. The raw side writes the journal's own record
// format (20-byte header with CRC-32C, then the payload) under the same 8-byte big-endian keys
// with MDB_APPEND | MDB_RESERVE, so that the only work it skips is what fabric adds on top of
// LMDB: the queue, the writer thread, the callbacks.
#include "journal_workloads.hpp"

#include <fabric/error.hpp>
#include <fabric_support/byte_order.hpp>
#include <fabric_support/crc32c.hpp>

#include <lmdb.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace fabric::perf::journal_bench {
namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count();
}

std::int64_t unix_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double seconds_between(std::int64_t from_ns, std::int64_t to_ns) noexcept {
  return static_cast<double>(to_ns - from_ns) / 1e9;
}

// ---- The journal's record format, written and checked by the raw side ----------------------
// Written here rather than through src/journal/record.hpp, which is private to the library: the
// baseline must not call into fabric. The CRC-32C is the journal's own header-only code, so both
// sides pay exactly the same for their checksums.

constexpr std::size_t header_size = 20;

using support::crc32c;

// Record format version 2: the CRC covers the stream's name after its length byte, the key, then
// the value after the CRC field (docs/journal-format.md).
std::uint32_t record_crc(const unsigned char key[8], const unsigned char* value, std::size_t size,
                         std::string_view stream = stream_name) noexcept {
  const auto length = static_cast<unsigned char>(stream.size());
  std::uint32_t c = crc32c(0, &length, 1);
  c = crc32c(c, stream.data(), stream.size());
  return crc32c(crc32c(c, key, 8), value + 4, size - 4);
}

void encode_record(const unsigned char key[8], std::int64_t timestamp_ns, std::string_view payload,
                   unsigned char* out) noexcept {
  out[4] = 2;  // version
  out[5] = 0;  // flags
  out[6] = 0;
  out[7] = 0;
  support::store_le(static_cast<std::uint32_t>(payload.size()), out + 8);
  support::store_le(static_cast<std::uint64_t>(timestamp_ns), out + 12);
  std::memcpy(out + header_size, payload.data(), payload.size());
  support::store_le(record_crc(key, out, header_size + payload.size()), out);
}

// ---- Raw LMDB -------------------------------------------------------------------------------

void check(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string("raw LMDB: ") + what + ": " + mdb_strerror(rc));
}

// The environment as journal::open sets it up for `mode`.
class raw_env {
 public:
  raw_env(const fs::path& dir, durability mode, std::size_t map_size) {
    check(mdb_env_create(&env_), "mdb_env_create");
    check(mdb_env_set_maxdbs(env_, journal_options{}.max_streams + 8), "mdb_env_set_maxdbs");
    check(mdb_env_set_mapsize(env_, map_size), "mdb_env_set_mapsize");
    unsigned flags = MDB_NOTLS;
    // The same flags the journal uses for each mode: periodic must sync each commit's pages
    // (MDB_NOMETASYNC) to survive an OS crash, so the baseline pays for that too.
    if (mode == durability::periodic) flags |= MDB_NOMETASYNC;
    if (mode == durability::none) flags |= MDB_NOSYNC;
    check(mdb_env_open(env_, dir.c_str(), flags, 0640), "mdb_env_open");
  }
  ~raw_env() { mdb_env_close(env_); }
  raw_env(const raw_env&) = delete;
  raw_env& operator=(const raw_env&) = delete;

  MDB_env* get() const noexcept { return env_; }

 private:
  MDB_env* env_ = nullptr;
};

class raw_txn {
 public:
  raw_txn(MDB_env* env, unsigned flags) { check(mdb_txn_begin(env, nullptr, flags, &txn_), "mdb_txn_begin"); }
  ~raw_txn() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  raw_txn(const raw_txn&) = delete;
  raw_txn& operator=(const raw_txn&) = delete;

  MDB_txn* get() const noexcept { return txn_; }
  void commit() { check(mdb_txn_commit(std::exchange(txn_, nullptr)), "mdb_txn_commit"); }

 private:
  MDB_txn* txn_ = nullptr;
};

std::string db_name(std::string_view stream = stream_name) { return "s/" + std::string(stream); }

// Appends record `seq` inside `t`.
void raw_put(MDB_txn* t, MDB_dbi dbi, std::uint64_t seq, std::int64_t timestamp_ns, std::string_view payload) {
  unsigned char key_bytes[8];
  support::store_be(seq, key_bytes);
  MDB_val key{sizeof key_bytes, key_bytes};
  MDB_val value{header_size + payload.size(), nullptr};
  check(mdb_put(t, dbi, &key, &value, MDB_APPEND | MDB_RESERVE), "mdb_put");
  encode_record(key_bytes, timestamp_ns, payload, static_cast<unsigned char*>(value.mv_data));
}

// Creates the stream's database with its first record, as the journal's warm-up append does.
MDB_dbi raw_create_stream(MDB_env* env, std::string_view payload) {
  raw_txn t(env, 0);
  MDB_dbi dbi = 0;
  check(mdb_dbi_open(t.get(), db_name().c_str(), MDB_CREATE, &dbi), "mdb_dbi_open");
  raw_put(t.get(), dbi, 1, unix_now_ns(), payload);
  t.commit();
  return dbi;
}

// ---- fabric::journal appends ----------------------------------------------------------------

struct append_shared {
  histogram* latency = nullptr;  // written by the journal's writer thread only
  std::atomic<std::uint64_t> remaining{0};
  std::atomic<std::uint64_t> failures{0};
  std::int64_t end_ns = 0;
  std::promise<void> done;
};

// One per producer, on its own cache line: the writer thread bumps `completed` once per append.
struct alignas(64) producer_slot {
  append_shared* shared = nullptr;
  std::atomic<std::uint64_t> completed{0};
  // The completion count at which a producer blocked on a full window wants waking, or
  // `no_wake`. Waking it only once half its window has drained, rather than at every completion,
  // keeps the benchmark's own futex traffic off the journal's writer thread.
  std::atomic<std::uint64_t> wake_at{no_wake};
  std::mutex mutex;
  std::condition_variable cv;
  std::uint64_t quota = 0;
  std::int64_t first_ns = 0;

  static constexpr std::uint64_t no_wake = ~std::uint64_t{0};
};

// `start_ns` is 0 for appends whose latency is not sampled; `records` is how many the completion
// covers (a batch's).
void on_complete(producer_slot* slot, std::int64_t start_ns, const result<std::uint64_t>& r,
                 std::uint64_t records = 1) {
  append_shared& shared = *slot->shared;
  if (!r) {
    shared.failures.fetch_add(records);
  } else if (start_ns != 0) {
    shared.latency->record(static_cast<std::uint64_t>(now_ns() - start_ns));
  }
  const std::uint64_t completed = slot->completed.fetch_add(records) + records;
  if (completed >= slot->wake_at.load() && slot->wake_at.exchange(producer_slot::no_wake) != producer_slot::no_wake) {
    std::lock_guard lock(slot->mutex);
    slot->cv.notify_one();
  }
  if (shared.remaining.fetch_sub(records) == records) {
    shared.end_ns = now_ns();
    shared.done.set_value();
  }
}

// Blocks while `window` of this producer's `issued` appends are outstanding, until half of them
// have completed. The seq_cst store of `wake_at` before re-reading `completed` pairs with the
// writer's increment before reading `wake_at`: one of the two always sees the other, and the
// mutex is held from that store until the wait, so no wake-up is lost. `seen` is the producer's
// last reading of `completed`; while that shows room, the producer leaves alone the cache line
// the writer thread writes at every completion.
void wait_for_room(producer_slot& slot, std::uint64_t issued, std::size_t window, std::uint64_t& seen) {
  if (issued - seen < window) return;
  seen = slot.completed.load();
  if (issued - seen < window) return;
  const std::uint64_t target = issued - window / 2;
  std::unique_lock lock(slot.mutex);
  while (slot.completed.load() < target) {
    slot.wake_at.store(target);
    if (slot.completed.load() >= target) break;
    slot.cv.wait(lock);
  }
  slot.wake_at.store(producer_slot::no_wake);
  seen = slot.completed.load();
}

// Timing every append puts a clock read and a histogram update into the writer thread's
// per-append path, the very path being measured: with durability none it cost about a fifth of
// the throughput. A systematic sample of every 16th append of each producer costs a sixteenth.
constexpr std::uint64_t latency_sample_every = 16;

void produce(journal& j, producer_slot& slot, std::size_t window, std::string_view payload, std::latch& go) {
  go.wait();
  std::uint64_t seen = 0;
  for (std::uint64_t issued = 0; issued < slot.quota; ++issued) {
    wait_for_room(slot, issued, window, seen);
    const std::int64_t start = issued % latency_sample_every == 0 ? now_ns() : 0;
    if (issued == 0) slot.first_ns = start;
    // Two words of capture keep the std::function in its small buffer: no allocation per append.
    producer_slot* s = &slot;
    j.append(stream_name, payload, [s, start](result<std::uint64_t> r) { on_complete(s, start, r); });
  }
}

// As produce(), `batch` records per journal::append_batch call; the latency of every 16th batch
// is sampled.
void produce_batches(journal& j, producer_slot& slot, std::size_t window, std::size_t batch,
                     std::string_view payload, std::latch& go) {
  go.wait();
  const std::vector<std::string_view> payloads(batch, payload);
  std::uint64_t seen = 0;
  std::uint64_t calls = 0;
  for (std::uint64_t issued = 0; issued < slot.quota; ++calls) {
    const std::uint64_t n = std::min<std::uint64_t>(batch, slot.quota - issued);
    wait_for_room(slot, issued + n - 1, window, seen);  // room for all n
    const std::int64_t start = calls % latency_sample_every == 0 ? now_ns() : 0;
    if (issued == 0) slot.first_ns = start;
    producer_slot* s = &slot;
    j.append_batch(stream_name, std::span(payloads.data(), n),
                   [s, start, n](result<std::uint64_t> r) { on_complete(s, start, r, n); });
    issued += n;
  }
}

journal open_journal(const fs::path& dir, durability mode, std::chrono::milliseconds sync_interval,
                     std::size_t map_size, std::size_t pending) {
  journal_options o;
  o.mode = mode;
  o.sync_interval = sync_interval;
  o.map_size = map_size;
  o.max_pending = std::max(o.max_pending, pending);
  return journal::open(dir, o);
}

}  // namespace

std::string_view to_string(durability mode) noexcept {
  switch (mode) {
    case durability::sync: return "sync";
    case durability::periodic: return "periodic";
    case durability::none: return "none";
  }
  return "?";
}

fs::path default_base_dir() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? fs::path(tmp) : fs::path("/tmp");
}

std::size_t map_size_for(std::size_t size, std::uint64_t records) {
  constexpr std::size_t mib = std::size_t{1} << 20;
  // Per record: header, key and LMDB's node and index overhead; three times that covers pages
  // freed by copy-on-write that LMDB cannot reuse yet.
  const auto need = static_cast<std::size_t>(records + 1) * (size + header_size + 32) * 3;
  return std::max<std::size_t>(64 * mib, (need + mib - 1) / mib * mib);
}

append_outcome fabric_append(const fs::path& dir, const append_spec& spec) {
  const auto producers = static_cast<std::size_t>(std::max(spec.producers, 1));
  // Declared before the journal so that they outlive it: closing the journal completes whatever
  // is still queued, and those callbacks use them.
  append_outcome out;
  append_shared shared;
  shared.latency = &out.latency;
  shared.remaining = spec.count;
  auto finished = shared.done.get_future();
  if (spec.count == 0) shared.done.set_value();
  std::vector<producer_slot> slots(producers);
  for (std::size_t i = 0; i < producers; ++i) {
    slots[i].shared = &shared;
    slots[i].quota = spec.count / producers + (i < spec.count % producers ? 1U : 0U);
  }

  journal j = open_journal(dir, spec.mode, spec.sync_interval, spec.map_size, producers * spec.window + 1);
  const std::string payload(spec.size, 'x');
  // The stream's database is created by its first append; that commit is not part of the figure.
  if (auto r = j.append_wait(stream_name, payload); !r) throw fabric::error(r.error());
  const journal_stats before = j.stats();

  std::latch go(1);
  std::vector<std::thread> threads;
  threads.reserve(producers);
  try {
    for (auto& slot : slots)
      threads.emplace_back([&j, &slot, &spec, &payload, &go] {
        if (spec.batch > 1) produce_batches(j, slot, spec.window, spec.batch, payload, go);
        else produce(j, slot, spec.window, payload, go);
      });
  } catch (...) {
    go.count_down();
    for (auto& t : threads) t.join();
    throw;
  }
  go.count_down();
  for (auto& t : threads) t.join();
  if (finished.wait_for(std::chrono::minutes(10)) != std::future_status::ready)
    throw std::runtime_error("journal appends did not complete within 10 minutes");
  if (const auto failed = shared.failures.load(); failed != 0)
    throw std::runtime_error(std::to_string(failed) + " journal appends failed");

  std::int64_t start = shared.end_ns;
  for (const auto& slot : slots)
    if (slot.quota > 0) start = std::min(start, slot.first_ns);
  const journal_stats after = j.stats();
  out.seconds = seconds_between(start, shared.end_ns);
  out.records = after.appends - before.appends;
  out.commits = after.commits - before.commits;
  out.syncs = after.syncs - before.syncs;
  out.map_size = after.map_size;
  return out;
}

append_outcome raw_append(const fs::path& dir, const append_spec& spec, std::uint64_t commits) {
  commits = std::clamp<std::uint64_t>(commits, 1, std::max<std::uint64_t>(spec.count, 1));
  raw_env env(dir, spec.mode, spec.map_size);
  const std::string payload(spec.size, 'x');
  const MDB_dbi dbi = raw_create_stream(env.get(), payload);
  const bool periodic = spec.mode == durability::periodic;
  const auto interval_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(spec.sync_interval).count();

  append_outcome out;
  const std::int64_t start = now_ns();
  std::int64_t next_sync = start + interval_ns;
  std::uint64_t seq = 1;
  for (std::uint64_t k = 0; k < commits; ++k) {
    // Spreads the remainder so batch sizes differ by at most one and their mean is exact.
    const std::uint64_t batch = (k + 1) * spec.count / commits - k * spec.count / commits;
    raw_txn t(env.get(), 0);
    const std::int64_t timestamp = unix_now_ns();
    for (std::uint64_t i = 0; i < batch; ++i) raw_put(t.get(), dbi, ++seq, timestamp, payload);
    t.commit();
    if (periodic) {
      if (const std::int64_t now = now_ns(); now >= next_sync) {
        check(mdb_env_sync(env.get(), 1), "mdb_env_sync");
        ++out.syncs;
        next_sync = now_ns() + interval_ns;
      }
    }
  }
  // Periodic appends count as done only once an fsync covers them.
  if (periodic) {
    check(mdb_env_sync(env.get(), 1), "mdb_env_sync");
    ++out.syncs;
  }
  out.seconds = seconds_between(start, now_ns());
  out.records = spec.count;
  out.commits = commits;
  out.map_size = spec.map_size;
  return out;
}

append_outcome fabric_append_one(const fs::path& dir, std::size_t size, std::uint64_t count,
                                 std::size_t map_size) {
  journal j = open_journal(dir, durability::sync, std::chrono::milliseconds(10), map_size, 0);
  const std::string payload(size, 'x');
  if (auto r = j.append_wait(stream_name, payload); !r) throw fabric::error(r.error());
  const journal_stats before = j.stats();
  append_outcome out;
  const std::int64_t start = now_ns();
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::int64_t t0 = now_ns();
    if (auto r = j.append_wait(stream_name, payload); !r) throw fabric::error(r.error());
    out.latency.record(static_cast<std::uint64_t>(now_ns() - t0));
  }
  out.seconds = seconds_between(start, now_ns());
  const journal_stats after = j.stats();
  out.records = after.appends - before.appends;
  out.commits = after.commits - before.commits;
  out.map_size = after.map_size;
  return out;
}

append_outcome raw_append_one(const fs::path& dir, std::size_t size, std::uint64_t count,
                              std::size_t map_size) {
  raw_env env(dir, durability::sync, map_size);
  const std::string payload(size, 'x');
  const MDB_dbi dbi = raw_create_stream(env.get(), payload);
  append_outcome out;
  const std::int64_t start = now_ns();
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::int64_t t0 = now_ns();
    raw_txn t(env.get(), 0);
    raw_put(t.get(), dbi, i + 2, unix_now_ns(), payload);
    t.commit();
    out.latency.record(static_cast<std::uint64_t>(now_ns() - t0));
  }
  out.seconds = seconds_between(start, now_ns());
  out.records = count;
  out.commits = count;
  out.map_size = map_size;
  return out;
}

std::uint64_t fill_for_replay(const fs::path& dir, std::size_t size, std::uint64_t count,
                              std::size_t map_size) {
  append_spec spec;
  spec.mode = durability::none;
  spec.size = size;
  spec.count = count;
  spec.map_size = map_size;
  const append_outcome filled = fabric_append(dir, spec);
  return filled.records + 1;  // and the warm-up append
}

namespace {
// Folded into by both replays so the compiler cannot drop the reads.
std::atomic<std::uint64_t> replay_sink{0};
}  // namespace

replay_outcome fabric_replay(const fs::path& dir, std::uint64_t expected) {
  journal_options o;
  o.mode = durability::none;
  journal j = journal::open(dir, o);
  std::uint64_t touched = 0;
  const std::int64_t start = now_ns();
  const auto delivered = j.replay(stream_name, 1, [&touched](const journal_record& r) {
    touched += r.payload.size() + static_cast<unsigned char>(r.payload.front());
    return true;
  });
  const std::int64_t end = now_ns();
  if (!delivered) throw fabric::error(delivered.error());
  if (*delivered != expected)
    throw std::runtime_error("journal replay delivered " + std::to_string(*delivered) + " records, expected " +
                             std::to_string(expected));
  replay_sink.fetch_add(touched, std::memory_order_relaxed);
  return {seconds_between(start, end), *delivered};
}

replay_outcome raw_replay(const fs::path& dir, std::size_t map_size, std::uint64_t expected,
                          std::string_view stream) {
  raw_env env(dir, durability::none, map_size);
  raw_txn t(env.get(), MDB_RDONLY);
  MDB_dbi dbi = 0;
  check(mdb_dbi_open(t.get(), db_name(stream).c_str(), 0, &dbi), "mdb_dbi_open");
  std::uint64_t records = 0;
  std::uint64_t touched = 0;
  const std::int64_t start = now_ns();
  MDB_cursor* c = nullptr;
  check(mdb_cursor_open(t.get(), dbi, &c), "mdb_cursor_open");
  std::unique_ptr<MDB_cursor, void (*)(MDB_cursor*)> owned(c, mdb_cursor_close);
  MDB_val key{}, value{};
  int rc = mdb_cursor_get(c, &key, &value, MDB_FIRST);
  for (; rc == 0; rc = mdb_cursor_get(c, &key, &value, MDB_NEXT)) {
    const auto* v = static_cast<const unsigned char*>(value.mv_data);
    const auto* k = static_cast<const unsigned char*>(key.mv_data);
    if (key.mv_size != 8 || value.mv_size < header_size ||
        support::load_le<std::uint32_t>(v) != record_crc(k, v, value.mv_size, stream))
      throw std::runtime_error("raw LMDB replay: record " + std::to_string(records + 1) + " fails its check");
    touched += (value.mv_size - header_size) + v[header_size];
    ++records;
  }
  const std::int64_t end = now_ns();
  if (rc != MDB_NOTFOUND) check(rc, "mdb_cursor_get");
  if (records != expected)
    throw std::runtime_error("raw LMDB replay read " + std::to_string(records) + " records, expected " +
                             std::to_string(expected));
  replay_sink.fetch_add(touched, std::memory_order_relaxed);
  return {seconds_between(start, end), records};
}

}  // namespace fabric::perf::journal_bench
