// Fuzz target: the FRS/1 stream parsers (src/reliability/frs.hpp): the live feed, the publisher's
// replay endpoint and the subscriber's. The first octet picks the parser; the rest is the frames.
// The grammar is canonical, so what a parser accepts must be exactly what the builders write for
// the values parsed, byte for byte.
#include "fuzz_frames.hpp"

#include "reliability/frs.hpp"

#include <cstddef>
#include <cstdint>

namespace {

using fabric::message;
using fabric::fuzz::check;
using fabric::fuzz::same_frames;
namespace frs = fabric::frs;

void common(const frs::parsed& p) {
  check(!frs::describe(p.error).empty(), "a fault without a description");
  check((p.error == frs::fault::none) == (frs::code_of(p.error).value() == 0), "code_of disagrees with the fault");
}

void live(const message& m) {
  const frs::parsed p = frs::parse_live(m);
  common(p);
  if (!p) return;
  message out;
  switch (p.what) {
    case frs::command::live:
      frs::write_live(out, p.stream, p.publisher_inc, p.live.seq, p.live.time_ns, p.live.body);
      break;
    case frs::command::beacon: frs::write_beacon(out, p.stream, p.publisher_inc, p.last); break;
    case frs::command::heartbeat: frs::write_heartbeat(out, p.publisher_inc, p.heartbeat_ms); break;
    default: check(false, "the live feed accepted a replay command"); return;
  }
  check(same_frames(out, 0, m, 0), "a live message is not what the builder writes");
}

// At the publisher: routing id | "FRS01" | command...; the subscriber's builders write no id.
void at_publisher(const message& m) {
  const frs::parsed p = frs::parse_at_publisher(m);
  common(p);
  if (!p) return;
  check(p.peer == m.view(0), "the peer is not frame 0");
  const frs::fetch_fields fetch{p.stream, p.fetch.from, p.fetch.max_count};
  message out;
  switch (p.what) {
    case frs::command::fetch: frs::write_fetch(out, p.request, fetch); break;
    case frs::command::fetch_time: frs::write_fetch_time(out, p.request, fetch); break;
    default: check(false, "the publisher accepted a command of the publisher's"); return;
  }
  check(same_frames(out, 0, m, 1), "a message at the publisher is not what the builder writes");
}

// At the subscriber: "FRS01" | command...; the publisher's builders write the routing id first.
void at_subscriber(const message& m) {
  const frs::parsed p = frs::parse_at_subscriber(m);
  common(p);
  if (!p) return;
  message out;
  switch (p.what) {
    case frs::command::batch: {
      check(!p.batch.empty() && p.batch.size() <= frs::max_bodies, "a BATCH's entries out of bounds");
      frs::batch_writer w(out, "peer", p.request, p.publisher_inc, p.batch.first_seq());
      std::size_t seen = 0;
      for (const frs::batch_entry e : p.batch) {
        check(e.seq == p.batch.first_seq() + seen, "a BATCH entry with the wrong sequence");
        w.add(e.time_ns, e.body);
        ++seen;
      }
      check(seen == p.batch.size(), "a BATCH's iteration and size disagree");
      w.finish();
      break;
    }
    case frs::command::end: frs::write_end(out, "peer", p.request, p.publisher_inc, p.end); break;
    case frs::command::gone: frs::write_gone(out, "peer", p.request, p.publisher_inc, p.gone); break;
    case frs::command::refuse: frs::write_refuse(out, "peer", p.request, p.refuse); break;
    default: check(false, "the subscriber accepted a command of the subscriber's"); return;
  }
  check(same_frames(out, 1, m, 0), "a message at the subscriber is not what the builder writes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  const std::uint8_t mode = in.byte();
  const message m = in.rest_message(32);
  switch (mode % 3) {
    case 0: live(m); break;
    case 1: at_publisher(m); break;
    default: at_subscriber(m); break;
  }
  return 0;
}
