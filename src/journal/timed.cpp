// Timed records: appends that expire after a TTL, and records scheduled for later delivery. Both
// wait in an index ordered by time, which the writer walks from the front each commit (a bounded
// amount), against the time of journal_options::clock.
//
//   x/expiry    : time len8 stream u64be seq -> (empty)            ; removed at `time`
//   x/scheduled : time u64be id -> msgpack [stream, payload]        ; appended at `time`
//   time        = u64be ; ns since the Unix epoch, sign bit flipped (catalog.hpp)
//
// A damaged index entry is dropped, never allowed to stall the entries behind it; a scheduled
// record that cannot be delivered goes to the dead-letter queue with the reason.
#include <fabric/codec.hpp>

#include "journal/journal_impl.hpp"

#include <algorithm>

namespace fabric {

using namespace journal_detail;

void journal::impl::add_expiry(journal_txn::state& st, std::string_view stream, std::uint64_t seq, std::int64_t ttl_ns) {
  std::string key;
  append_time(key, add_saturating(st.now_ns, ttl_ns));
  append_len8(key, stream);
  detail::append_be(key, seq);
  put_in(st, expiry_db, key, {});
  ++st.timed_delta;
}

std::uint64_t journal::impl::add_scheduled(journal_txn::state& st, std::string_view stream, std::string_view payload,
                                           std::int64_t deliver_at) {
  const std::uint64_t id = next_counter(st, scheduled_counter);
  std::string key;
  append_time(key, deliver_at);
  detail::append_be(key, id);
  const frame value = pack(std::make_tuple(std::string(stream), std::string(payload)));
  put_in(st, scheduled_db, key, view(value));
  ++st.timed_delta;
  return id;
}

void journal::impl::run_timed(journal_txn::state& st) {
  if (timed_entries == 0) return;
  const std::uint64_t now_key = sortable_time(st.now_ns);
  int rc = 0;
  {
    journal_detail::cursor c(st.txn, *find_dbi(expiry_db), rc);
    MDB_val key{}, value{};
    for (int budget = 1024; rc == 0 && budget > 0 && c.get(key, value, MDB_FIRST) == 0; --budget) {
      const auto* bytes = static_cast<const char*>(key.mv_data);
      const bool well_formed = key.mv_size >= 8 + 1 + 8 &&
                               key.mv_size == 8 + 1 + static_cast<unsigned char>(bytes[8]) + 8u;
      if (!well_formed) {  // damaged: drop it, or it would stall every expiry behind it
        if (const int rc_del = c.del(); rc_del != 0) throw lmdb_failure{rc_del};
        --st.timed_delta;
        st.changed = true;
        continue;
      }
      if (detail::load_be<std::uint64_t>(bytes) > now_key) break;
      const auto len = static_cast<unsigned char>(bytes[8]);
      const std::string stream(bytes + 9, len);
      const std::uint64_t seq = detail::load_be<std::uint64_t>(bytes + 9 + len);
      if (const int rc_del = c.del(); rc_del != 0) throw lmdb_failure{rc_del};
      --st.timed_delta;
      st.changed = true;
      if (remove_record(st, stream, seq) >= 0) ++st.expired;
    }
  }
  {
    journal_detail::cursor c(st.txn, *find_dbi(scheduled_db), rc);
    MDB_val key{}, value{};
    for (int budget = 1024; rc == 0 && budget > 0 && c.get(key, value, MDB_FIRST) == 0; --budget) {
      if (key.mv_size != 16) {  // damaged: drop it, or it would stall every schedule behind it
        if (const int rc_del = c.del(); rc_del != 0) throw lmdb_failure{rc_del};
        --st.timed_delta;
        st.changed = true;
        continue;
      }
      if (detail::load_be<std::uint64_t>(static_cast<const char*>(key.mv_data)) > now_key) break;
      auto item = unpack<std::tuple<std::string, std::string>>(to_span(value));
      std::string stream, payload;
      if (item) std::tie(stream, payload) = std::move(*item);
      if (const int rc_del = c.del(); rc_del != 0) throw lmdb_failure{rc_del};
      --st.timed_delta;
      st.changed = true;
      if (!item) continue;  // unreadable: dropped, not guessed at
      // A record that cannot be delivered goes to the dead-letter queue with the reason, rather
      // than failing this commit and every one after it.
      if (!valid_stream_name(stream)) {
        dead_letter_raw(st, stream, "scheduled for a stream name that is not valid", payload);
        continue;
      }
      try {
        append_in(st, stream, payload);
      } catch (const error& e) {
        dead_letter_raw(st, stream, std::string("scheduled delivery failed: ") + e.what(), payload);
        continue;
      }
      ++st.delivered;
    }
  }
}

result<std::uint64_t> journal::append_wait(std::string_view stream, std::string_view payload,
                                           std::chrono::nanoseconds ttl) {
  pending_append work;
  work.stream = std::string(stream);
  work.payload = std::string(payload);
  work.ttl_ns = ttl.count();
  return impl_->enqueue_and_wait(std::move(work));
}

namespace {

pending_append scheduled_work(std::string_view stream, std::string_view payload, std::int64_t deliver_at_ns) {
  pending_append work;
  work.stream = std::string(stream);
  work.payload = std::string(payload);
  work.deliver_at = std::max<std::int64_t>(deliver_at_ns, 1);  // 0 would mean "not scheduled"
  return work;
}

}  // namespace

result<std::uint64_t> journal::schedule(std::string_view stream, std::string_view payload,
                                        std::int64_t deliver_at_ns) {
  return impl_->enqueue_and_wait(scheduled_work(stream, payload, deliver_at_ns));
}

void journal::schedule(std::string_view stream, std::string_view payload, std::int64_t deliver_at_ns,
                       completion_queue& queue, std::uint64_t token) {
  pending_append work = scheduled_work(stream, payload, deliver_at_ns);
  work.done = [q = &queue, token](result<std::uint64_t> r) { q->push(token, std::move(r)); };
  impl_->enqueue(std::move(work));
}

result<std::uint64_t> journal::scheduled_count() const {
  return impl_->read_in(scheduled_db, std::uint64_t{0}, [](MDB_txn* t, MDB_dbi dbi) -> result<std::uint64_t> {
    MDB_stat stat{};
    if (const int rc = mdb_stat(t, dbi, &stat); rc != 0) return lmdb_error(rc);
    return std::uint64_t{stat.ms_entries};
  });
}

}  // namespace fabric
