// The Titanic service's journal writes and its replication log entries (titanic_store.hpp).
#include "reliability/titanic_store.hpp"

#include <fabric/error.hpp>

namespace fabric::titanic::store {

void apply(journal_txn& t, const std::vector<tsp::request_change>& changes, std::int64_t now,
           std::vector<std::uint64_t>& seqs, bool follower) {
  const auto row_of = [&](const tsp::uuid& id) -> std::optional<state_row> {
    auto v = t.get(service::state_table, uuid_key(id));
    if (!v) throw error(v.error(), "titanic service: the journal could not be read");
    if (!*v) return std::nullopt;
    return decode_state(**v);
  };
  for (const auto& c : changes) {
    switch (c.kind) {
      case tsp::change_kind::stored: {
        if (follower) {
          auto v = t.get(service::state_table, uuid_key(c.id));
          if (!v) throw error(v.error(), "titanic service: the journal could not be read");
          if (*v) break;
        }
        const std::uint64_t seq = t.append(service::requests_stream, encode_record(c.id, c.key, c.service, c.body));
        state_row s{.state = state_open, .seq = seq, .stored_ns = now, .key = c.key, .service = c.service};
        t.put(service::state_table, uuid_key(c.id), encode_state(s));
        t.put(service::open_table, be64(seq), uuid_key(c.id));
        if (!c.key.empty()) t.put(service::keys_table, c.key, uuid_key(c.id));
        seqs.push_back(seq);
        break;
      }
      case tsp::change_kind::attempt: {
        auto s = row_of(c.id);
        if (!s || s->state != state_open) break;
        s->attempts = c.attempts;
        t.put(service::state_table, uuid_key(c.id), encode_state(*s));
        break;
      }
      case tsp::change_kind::replied:
      case tsp::change_kind::given_up: {
        auto s = row_of(c.id);
        if (!s || s->state != state_open) break;
        t.erase(service::open_table, be64(s->seq));
        s->finished_ns = now;
        if (c.kind == tsp::change_kind::replied) {
          s->state = state_replied;
          std::string v;
          put_frames(v, c.body);
          t.put(service::replies_table, uuid_key(c.id), v);
        } else {
          s->state = state_given_up;
          s->attempts = c.attempts;
          s->reason = c.reason;
          (void)t.dead_letter(service::requests_stream, s->seq, c.reason, c.attempts);
        }
        t.put(service::state_table, uuid_key(c.id), encode_state(*s));
        t.put(service::finished_table, finished_key(now, c.id), {});
        break;
      }
      case tsp::change_kind::closed:
      case tsp::change_kind::removed: {
        if (c.kind == tsp::change_kind::removed && !c.index.empty()) t.erase(service::finished_table, c.index);
        auto s = row_of(c.id);
        if (!s) break;
        t.erase(service::state_table, uuid_key(c.id));
        if (s->state == state_open) {
          t.erase(service::open_table, be64(s->seq));
        } else {
          t.erase(service::replies_table, uuid_key(c.id));
          t.erase(service::finished_table, finished_key(s->finished_ns, c.id));
        }
        if (!s->key.empty()) {
          auto k = t.get(service::keys_table, s->key);
          if (k && *k && **k == uuid_key(c.id)) t.erase(service::keys_table, s->key);
        }
        break;
      }
    }
  }
}

std::optional<std::uint64_t> trim_point(const journal& j) {
  auto first = j.table_entries(service::open_table, {}, 1);
  if (!first) return std::nullopt;
  if (!first->empty() && first->front().first.size() == 8)
    return detail::load_be<std::uint64_t>(reinterpret_cast<const unsigned char*>(first->front().first.data())) - 1;
  auto last = j.last_seq(service::requests_stream);
  if (!last || !*last) return std::nullopt;
  return **last;
}

result<log_point> read_head(const journal& j) {
  auto v = j.get(pair_table, head_key);
  if (!v) return v.error();
  if (!*v) return log_point{};
  auto p = decode_point(**v);
  if (!p) return errc::malformed;
  return *p;
}

result<std::uint64_t> read_term(const journal& j) {
  auto v = j.get(pair_table, term_key);
  if (!v) return v.error();
  if (!*v) return std::uint64_t{0};
  if ((*v)->size() != 8) return errc::malformed;
  return detail::load_be<std::uint64_t>(reinterpret_cast<const unsigned char*>((*v)->data()));
}

}  // namespace fabric::titanic::store
