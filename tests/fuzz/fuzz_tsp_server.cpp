// Fuzz target: the 9/TSP (Titanic) server's machine (src/reliability/tsp_server.hpp) fed a
// sequence of events on a fake clock, with an in-memory journal and broker: Titanic requests
// built from the input or raw, keyed requests, reply and close requests for the UUIDs handed
// out, service replies and timeouts, mmi.service answers, commits that succeed or fail.
// Checked on every answer: it parses as the answer of its service, a "200" to titanic.request
// names a request the journal holds, and a "200" to titanic.reply carries a reply the journal
// holds, so that nothing is acknowledged before it is durable.
#include "fuzz_frames.hpp"

#include "reliability/tsp.hpp"
#include "reliability/tsp_server.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using fabric::message;
using fabric::fuzz::check;
namespace tsp = fabric::tsp;
using fabric::detail::time_point;
using namespace std::chrono_literals;

constexpr std::size_t max_events = 384;
const char* const services[] = {"echo", "work"};

message copy(const message& m) { return m.clone(); }

class journal final : public tsp::server_store {
 public:
  struct record {
    std::uint64_t seq = 0;
    std::string service;
    std::string key;
    message body;
    enum class state { open, replied, given_up } what = state::open;
    message reply;
    std::string reason;
    std::uint32_t attempts = 0;
    time_point expires_at = time_point::max();
  };

  fabric::result<bool> read_open(std::uint64_t after, std::size_t max, std::vector<tsp::open_request>& out) override {
    if (failing) return fabric::errc::io_error;
    std::map<std::uint64_t, const std::pair<const tsp::uuid, record>*> by_seq;
    for (const auto& r : records)
      if (r.second.what == record::state::open && r.second.seq > after) by_seq.emplace(r.second.seq, &r);
    std::size_t n = 0;
    for (const auto& [seq, r] : by_seq) {
      if (n == max) return false;
      out.push_back({r->first, seq, r->second.service, r->second.attempts, r->second.expires_at});
      ++n;
    }
    return true;
  }
  fabric::result<message> read_body(const tsp::uuid& id, std::uint64_t seq) override {
    if (failing) return fabric::errc::io_error;
    const auto it = records.find(id);
    if (it == records.end() || it->second.seq != seq) return fabric::errc::malformed;
    return copy(it->second.body);
  }
  fabric::result<tsp::request_lookup> lookup(const tsp::uuid& id) override {
    if (failing) return fabric::errc::io_error;
    tsp::request_lookup l;
    const auto it = records.find(id);
    if (it == records.end()) return l;
    switch (it->second.what) {
      case record::state::open: l.what = tsp::request_lookup::state::open; break;
      case record::state::replied:
        l.what = tsp::request_lookup::state::replied;
        l.reply = copy(it->second.reply);
        break;
      case record::state::given_up:
        l.what = tsp::request_lookup::state::given_up;
        l.reason = it->second.reason;
        break;
    }
    return l;
  }
  fabric::result<std::optional<tsp::uuid>> find_key(std::string_view key) override {
    if (failing) return fabric::errc::io_error;
    const auto it = keys.find(std::string(key));
    if (it == keys.end()) return std::optional<tsp::uuid>();
    return std::optional<tsp::uuid>(it->second);
  }
  fabric::result<std::vector<tsp::due_removal>> due_removals(std::size_t) override {
    return std::vector<tsp::due_removal>();
  }
  void commit(tsp::commit_batch&& batch) override {
    check(!in_flight.has_value(), "a second commit while one is in flight");
    in_flight = std::move(batch);
  }

  // Writes a commit as the journal would; returns the seqs of its stored changes.
  std::vector<std::uint64_t> apply(tsp::commit_batch& b) {
    std::vector<std::uint64_t> seqs;
    for (auto& c : b.changes) {
      switch (c.kind) {
        case tsp::change_kind::stored: {
          check(records.count(c.id) == 0, "a request stored twice");
          record r;
          r.seq = next_seq++;
          r.service = c.service;
          r.key = c.key;
          r.body = copy(c.body);
          r.expires_at = c.expires_at;
          if (!c.key.empty()) keys[c.key] = c.id;
          seqs.push_back(r.seq);
          records.emplace(c.id, std::move(r));
          break;
        }
        case tsp::change_kind::attempt:
          if (auto it = records.find(c.id); it != records.end()) it->second.attempts = c.attempts;
          break;
        case tsp::change_kind::replied: {
          auto it = records.find(c.id);
          check(it != records.end(), "a reply stored for a request the journal does not hold");
          it->second.what = record::state::replied;
          it->second.reply = copy(c.body);
          break;
        }
        case tsp::change_kind::given_up:
          if (auto it = records.find(c.id); it != records.end()) {
            it->second.what = record::state::given_up;
            it->second.reason = c.reason;
          }
          break;
        case tsp::change_kind::closed:
        case tsp::change_kind::removed:
          if (auto it = records.find(c.id); it != records.end()) {
            if (!it->second.key.empty()) keys.erase(it->second.key);
            records.erase(it);
          }
          break;
      }
    }
    return seqs;
  }

  std::map<tsp::uuid, record> records;
  std::map<std::string, tsp::uuid> keys;
  std::optional<tsp::commit_batch> in_flight;
  std::uint64_t next_seq = 1;
  bool failing = false;
};

class broker final : public tsp::server_io {
 public:
  explicit broker(const journal& j) : journal_(j) {}

  void answer(const tsp::origin& to, message&& body) override {
    switch (to.kind) {
      case tsp::service_kind::request:
      case tsp::service_kind::keyed_request: {
        const tsp::parsed_reply r = tsp::parse_request_reply(body);
        check(static_cast<bool>(r), "an answer to titanic.request that does not parse");
        if (r.code == tsp::status::ok) {
          check(journal_.records.count(r.id) != 0, "a request acknowledged before the journal holds it");
          issued.push_back(r.id);
          if (issued.size() > 32) issued.erase(issued.begin());
        }
        break;
      }
      case tsp::service_kind::reply: {
        const tsp::parsed_reply r = tsp::parse_reply_reply(body);
        check(static_cast<bool>(r), "an answer to titanic.reply that does not parse");
        if (r.code == tsp::status::ok) {
          const auto asked = asked_about.find(to.client);
          check(asked != asked_about.end(), "an answer to a titanic.reply nobody sent");
          const auto it = journal_.records.find(asked->second);
          check(it != journal_.records.end() && it->second.what == journal::record::state::replied,
                "a reply handed out that the journal does not hold");
        }
        break;
      }
      case tsp::service_kind::close:
        check(static_cast<bool>(tsp::parse_close_reply(body)), "an answer to titanic.close that does not parse");
        break;
    }
  }
  fabric::result<std::uint64_t> dispatch(std::string_view, message&&, std::chrono::milliseconds) override {
    if (failing) return fabric::errc::back_pressure;
    dispatches.push_back(++last_dispatch);
    if (dispatches.size() > 32) dispatches.erase(dispatches.begin());
    return last_dispatch;
  }
  fabric::result<void> query_service(std::string_view) override {
    if (failing) return fabric::errc::back_pressure;
    return {};
  }
  void cancel(std::uint64_t) noexcept override {}

  bool failing = false;
  std::vector<std::uint64_t> dispatches;
  std::vector<tsp::uuid> issued;
  std::map<std::string, tsp::uuid> asked_about;  // titanic.reply's client address -> the UUID asked

 private:
  const journal& journal_;
  std::uint64_t last_dispatch = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  tsp::server_settings s;
  const std::uint8_t shape = in.byte();
  s.max_in_flight = 1 + shape % 4;
  s.service_window = 1 + (shape >> 2) % 3;
  s.dispatch_timeout = 500ms;
  s.max_attempts = 1 + (shape >> 4) % 3;
  s.retry_base = 100ms;
  s.retry_max = 1000ms;
  s.request_ttl = (shape & 0x40) ? 2000ms : 0ms;
  s.service_check_interval = 500ms;
  s.sweep_interval = 1000ms;
  s.max_request_bytes = 64 + in.byte();
  s.max_in_memory = 1 + in.byte() % 8;
  s.page = 1 + in.byte() % 4;
  s.max_batch = 1 + in.byte() % 8;
  s.cache_bytes = (shape & 0x80) ? 1024 : 0;

  journal store;
  broker io(store);
  auto now = time_point(std::chrono::seconds(1000));
  tsp::server_machine machine(s, io, store);
  std::uint64_t clients = 0;

  for (std::size_t event = 0; event < max_events && !in.empty(); ++event) {
    const std::uint8_t op = in.byte();
    const std::string client = "client-" + std::to_string(++clients);
    const std::uint64_t connection = (op >> 6) + 1;
    message body;
    switch (op & 0x0F) {
      case 0:
        tsp::write_request(body, services[(op >> 4) & 1], message(in.frame_bytes()));
        machine.on_request({tsp::service_kind::request, client, connection}, std::move(body), now);
        break;
      case 1: {
        const std::string key = "key-" + std::to_string(in.byte() % 4);
        tsp::write_keyed_request(body, key, services[(op >> 4) & 1], message(in.frame_bytes()));
        machine.on_request({tsp::service_kind::keyed_request, client, connection}, std::move(body), now);
        break;
      }
      case 2:
      case 3: {
        if (io.issued.empty()) break;
        const tsp::uuid id = io.issued[in.byte() % io.issued.size()];
        tsp::write_uuid_request(body, id);
        const auto kind = (op & 0x0F) == 2 ? tsp::service_kind::reply : tsp::service_kind::close;
        if (kind == tsp::service_kind::reply) io.asked_about[client] = id;
        machine.on_request({kind, client, connection}, std::move(body), now);
        break;
      }
      case 4:
        machine.on_request({static_cast<tsp::service_kind>((op >> 4) & 3), client, connection},
                           in.counted_message(), now);
        break;
      case 5:
      case 6: {
        if (io.dispatches.empty()) break;
        const std::uint64_t id = io.dispatches[in.byte() % io.dispatches.size()];
        if ((op & 0x0F) == 5)
          machine.on_dispatch_reply(id, message(in.frame_bytes()), now);
        else
          machine.on_dispatch_expired(id, now);
        break;
      }
      case 7:
        machine.on_service_status(services[(op >> 4) & 1], (op & 0x20) != 0, now);
        break;
      case 8:
        if (store.in_flight) {
          tsp::commit_batch b = std::move(*store.in_flight);
          store.in_flight.reset();
          if ((op & 0x10) == 0) {
            std::vector<std::uint64_t> seqs = store.apply(b);
            machine.on_committed(b.id, {}, std::move(seqs), now);
          } else {
            machine.on_committed(b.id, fabric::errc::io_error, {}, now);
          }
        }
        break;
      case 9:
        now += std::chrono::milliseconds(25 * std::size_t{in.byte()});
        if (now >= machine.next_tick()) machine.on_tick(now);
        break;
      case 10:
        io.failing = !io.failing;
        break;
      case 11:
        store.failing = !store.failing;
        break;
      default:
        if (now >= machine.next_tick()) machine.on_tick(now);
        break;
    }
  }
  (void)machine.stats();
  return 0;
}
