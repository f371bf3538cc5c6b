// Fuzz target: the FRC/1 receiver's machine (src/reliability/frc_receiver.hpp) fed a sequence of
// events on a fake clock, with an in-memory journal: raw messages from a few senders, HELLO, DATA,
// SKIP and GOODBYE built from the input (so that the fuzzer reaches handshakes, delivery and
// commits without first learning the grammar), commits that succeed or fail, loads that fail, and
// time passing. Also the decoders of the channel records the receiver reads back from its journal.
//
// Checked on every commit: each channel's entries run on without a gap or an overlap from what
// the journal already holds for the same sender incarnation, and the record written is the last
// sequence taken; everything the machine sends parses at a sender.
#include "fuzz_frames.hpp"

#include "reliability/frc.hpp"
#include "reliability/frc_receiver.hpp"

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
namespace frc = fabric::frc;
using namespace std::chrono_literals;

constexpr std::size_t max_events = 512;
constexpr std::uint64_t my_incarnation = 77;

class sink final : public fabric::detail::machine_sink {
 public:
  fabric::result<void> send(fabric::detail::port, message&& m) override {
    check(m.size() >= 2, "the receiver sent a message without routing id and header");
    (void)m.pop_front();
    const frc::parsed p = frc::parse_at_sender(m);
    check(static_cast<bool>(p), "the receiver sent what a sender cannot parse");
    m.clear();
    if (refusing) return fabric::errc::peer_unreachable;
    return {};
  }
  bool refusing = false;
};

class store final : public frc::receiver_store {
 public:
  fabric::result<std::optional<frc::channel_record>> load(std::string_view key) override {
    if (failing_loads) return fabric::errc::io_error;
    const auto it = records.find(std::string(key));
    if (it == records.end()) return std::optional<frc::channel_record>();
    return std::optional<frc::channel_record>(it->second);
  }
  fabric::result<std::vector<std::uint64_t>> load_expired(std::string_view key) override {
    const auto it = expired.find(std::string(key));
    if (it == expired.end()) return std::vector<std::uint64_t>();
    return it->second;
  }
  void commit(frc::commit_batch&& batch) override {
    check(!in_flight.has_value(), "a second commit while one is in flight");
    in_flight = std::move(batch);
  }
  void report(const frc::channel_event&) override {}

  // Writes a commit as the journal would, checking it against what the journal holds.
  void apply(const frc::commit_batch& b) {
    for (const auto& u : b.updates) {
      std::uint64_t next = 0;
      for (const auto& e : u.entries) {
        check(e.last >= e.seq, "a commit entry ends before it starts");
        check(e.kind == frc::entry_kind::skipped || e.last == e.seq, "a single entry spans sequences");
        check(next == 0 || e.seq == next, "a commit's entries skip or repeat a sequence");
        next = e.last + 1;
      }
      if (!u.entries.empty()) check(u.record.taken == u.entries.back().last, "the record is not the last sequence taken");
      const auto it = records.find(u.key);
      if (it != records.end() && it->second.sender_incarnation == u.record.sender_incarnation) {
        if (!u.entries.empty())
          check(u.entries.front().seq == it->second.taken + 1, "a commit does not continue where the journal stands");
        check(u.record.taken >= it->second.taken, "a commit moves a channel's mark backwards");
      }
      records[u.key] = u.record;
      if (u.expired_kept) expired[u.key] = *u.expired_kept;
    }
  }

  std::map<std::string, frc::channel_record> records;
  std::map<std::string, std::vector<std::uint64_t>> expired;
  std::optional<frc::commit_batch> in_flight;
  bool failing_loads = false;
};

message from(const std::string& peer, message&& m) {
  message out = std::move(m);
  out.push_front(peer);
  return out;
}

// The journal-side decoders, on raw bytes.
void decoders(std::string_view bytes) {
  frc::channel_record r;
  if (frc::decode_record(bytes, r)) {
    frc::channel_record again;
    check(frc::decode_record(frc::encode_record(r), again) && again == r, "a channel record reads back differently");
  }
  std::vector<std::uint64_t> seqs;
  if (frc::decode_seqs(bytes, seqs)) {
    std::vector<std::uint64_t> again;
    check(frc::decode_seqs(frc::encode_seqs(seqs), again) && again == seqs, "a sequence list reads back differently");
  }
  std::string_view sender;
  std::string_view stream;
  if (frc::split_channel_key(bytes, sender, stream))
    check(frc::channel_key(sender, stream) == bytes, "a channel key is not what channel_key writes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  const std::uint8_t shape = in.byte();
  if (shape == 0xFF) {
    decoders(in.rest());
    return 0;
  }
  frc::receiver_settings settings;
  settings.incarnation = my_incarnation;
  settings.credit = 1 + shape % 8;
  settings.max_links = 1 + in.byte() % 4;
  settings.max_batch = 1 + in.byte() % 8;
  settings.max_expired_kept = 1 + in.byte() % 8;
  settings.max_protocol_errors = 1 + in.byte() % 4;
  settings.max_message = 16 + in.byte();

  sink out;
  store journal;
  auto now = fabric::detail::time_point(std::chrono::seconds(1000));
  frc::receiver_machine machine(settings, out, journal);

  for (std::size_t event = 0; event < max_events && !in.empty(); ++event) {
    const std::uint8_t op = in.byte();
    const std::string peer = "peer-" + std::to_string((op >> 4) % 3);
    const std::uint32_t link = 1 + in.byte() % 4;
    message m;
    switch (op % 8) {
      case 0:
        machine.on_message(from(peer, in.counted_message()), now);
        break;
      case 1: {
        const std::uint8_t b = in.byte();
        frc::hello_fields h;
        h.stream = (b & 1) ? "orders" : "prices";
        h.sender = (b & 2) ? "svc-a" : "svc-b";
        h.receiver_inc_seen = (b & 4) ? my_incarnation : (b & 8) ? 5 : 0;
        h.sender_inc = 1 + (b >> 4) % 3;
        h.acked = in.byte();
        h.last = h.acked + in.byte();
        h.heartbeat_ms = 1000;
        frc::write_hello(m, link, h);
        machine.on_message(from(peer, std::move(m)), now);
        break;
      }
      case 2: {
        const std::uint64_t first = 1 + in.byte();
        const std::size_t count = 1 + in.byte() % 4;
        frc::data_writer w(m, link, first);
        for (std::size_t i = 0; i < count; ++i) w.add((op & 0x08) ? 100 : 0, in.frame_bytes());
        w.finish();
        machine.on_message(from(peer, std::move(m)), now);
        break;
      }
      case 3: {
        const std::uint64_t first = 1 + in.byte();
        frc::write_skip(m, link, {first, first + in.byte() % 4, "gone"});
        machine.on_message(from(peer, std::move(m)), now);
        break;
      }
      case 4:
        if (op & 0x08)
          frc::write_goodbye(m, link);
        else
          frc::write_heartbeat(m);
        machine.on_message(from(peer, std::move(m)), now);
        break;
      case 5:  // the commit in flight completes, or fails
        if (journal.in_flight) {
          frc::commit_batch b = std::move(*journal.in_flight);
          journal.in_flight.reset();
          const bool ok = (op & 0x08) == 0;
          if (ok) journal.apply(b);
          machine.on_committed(b.id, ok ? fabric::result<void>() : fabric::result<void>(fabric::errc::io_error), now);
        }
        break;
      case 6:
        now += std::chrono::milliseconds(20 * std::size_t{in.byte()});
        if (now >= machine.next_tick()) machine.on_tick(now);
        break;
      default:
        if (op & 0x08)
          journal.failing_loads = !journal.failing_loads;
        else
          out.refusing = !out.refusing;
        break;
    }
  }
  (void)machine.channel_stats();
  return 0;
}
