// Fuzz target: the FRQ/1 work-queue parsers (src/reliability/frq.hpp), at the producer and at the
// worker. The first octet picks the side; the rest is the frames. The grammar is canonical, so
// what a parser accepts must be exactly what the builders write for the values parsed, byte for
// byte.
#include "fuzz_frames.hpp"

#include "reliability/frq.hpp"

#include <cstddef>
#include <cstdint>

namespace {

using fabric::message;
using fabric::fuzz::check;
using fabric::fuzz::same_frames;
namespace frq = fabric::frq;

void common(const frq::parsed& p) {
  check(!frq::describe(p.error).empty(), "a fault without a description");
  check((p.error == frq::fault::none) == (frq::code_of(p.error).value() == 0), "code_of disagrees with the fault");
}

// At the producer: routing id | "FRQ01" | command...; the worker's builders write no id.
void at_producer(const message& m) {
  const frq::parsed p = frq::parse_at_producer(m);
  common(p);
  if (!p) return;
  check(p.peer == m.view(0), "the peer is not frame 0");
  message out;
  switch (p.what) {
    case frq::command::hello: frq::write_hello(out, p.hello); break;
    case frq::command::capacity: frq::write_capacity(out, p.capacity); break;
    case frq::command::result: frq::write_result(out, p.producer_inc, p.key, p.status, p.body); break;
    case frq::command::extend: frq::write_extend(out, p.producer_inc, p.key, p.extend_ms); break;
    case frq::command::worker_heartbeat: frq::write_worker_heartbeat(out); break;
    case frq::command::bye: frq::write_bye(out); break;
    default: check(false, "the producer accepted a command of the producer's"); return;
  }
  check(same_frames(out, 0, m, 1), "a message at the producer is not what the builder writes");
}

// At the worker: "FRQ01" | command...; the producer's builders write the routing id first.
void at_worker(const message& m) {
  const frq::parsed p = frq::parse_at_worker(m);
  common(p);
  if (!p) return;
  message out;
  switch (p.what) {
    case frq::command::welcome: frq::write_welcome(out, "peer", p.producer_inc, p.heartbeat_ms); break;
    case frq::command::task: {
      check(p.task.key == p.key, "a TASK's key and its fields' key differ");
      frq::write_task(out, "peer", p.producer_inc, p.task, p.body);
      break;
    }
    case frq::command::recorded: frq::write_recorded(out, "peer", p.producer_inc, p.key, p.verdict); break;
    case frq::command::cancel: frq::write_cancel(out, "peer", p.producer_inc, p.key); break;
    case frq::command::producer_heartbeat: frq::write_producer_heartbeat(out, "peer", p.producer_inc); break;
    case frq::command::refuse: frq::write_refuse(out, "peer", p.refuse); break;
    default: check(false, "the worker accepted a command of the worker's"); return;
  }
  check(same_frames(out, 1, m, 0), "a message at the worker is not what the builder writes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  const std::uint8_t mode = in.byte();
  const message m = in.rest_message(32);
  if (mode % 2 == 0)
    at_producer(m);
  else
    at_worker(m);
  return 0;
}
