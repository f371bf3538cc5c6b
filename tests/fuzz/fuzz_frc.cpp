// Fuzz target: the FRC/1 reliable-channel parsers (src/reliability/frc.hpp), at the receiver and
// at the sender. The first octet picks the side; the rest is the frames. The grammar is
// canonical, so what a parser accepts must be exactly what the builders write for the values
// parsed, byte for byte.
#include "fuzz_frames.hpp"

#include "reliability/frc.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

using fabric::message;
using fabric::fuzz::check;
using fabric::fuzz::same_frames;
namespace frc = fabric::frc;

void common(const frc::parsed& p) {
  check(!frc::describe(p.error).empty(), "a fault without a description");
  check((p.error == frc::fault::none) == (frc::code_of(p.error).value() == 0), "code_of disagrees with the fault");
}

// At the receiver: routing id | "FRC01" | command...; the sender's builders write no routing id.
void at_receiver(const message& m) {
  const frc::parsed p = frc::parse_at_receiver(m);
  common(p);
  if (!p) return;
  check(p.peer == m.view(0), "the peer is not frame 0");
  message out;
  switch (p.what) {
    case frc::command::hello: frc::write_hello(out, p.link, p.hello); break;
    case frc::command::skip: frc::write_skip(out, p.link, p.skip); break;
    case frc::command::heartbeat: frc::write_heartbeat(out); break;
    case frc::command::goodbye:
      if (p.link == 0)
        frc::write_goodbye(out);
      else
        frc::write_goodbye(out, p.link);
      break;
    case frc::command::data: {
      check(!p.data.empty() && p.data.size() <= frc::max_entries, "a DATA's entries out of bounds");
      frc::data_writer w(out, p.link, p.data.first_seq());
      for (const frc::data_entry e : p.data) w.add(e.ttl_ms, e.body);
      w.finish();
      break;
    }
    default: check(false, "the receiver accepted a command of the receiver's"); return;
  }
  check(same_frames(out, 0, m, 1), "a message at the receiver is not what the builder writes");
}

// At the sender: "FRC01" | command...; the receiver's builders write the routing id first.
void at_sender(const message& m) {
  const frc::parsed p = frc::parse_at_sender(m);
  common(p);
  if (!p) return;
  message out;
  switch (p.what) {
    case frc::command::welcome: frc::write_welcome(out, "peer", p.link, p.welcome); break;
    case frc::command::ack: {
      std::vector<std::uint64_t> expired;
      for (const std::uint64_t seq : p.ack.expired) expired.push_back(seq);
      frc::write_ack(out, "peer", p.link, p.ack.taken, p.ack.credit, expired);
      break;
    }
    case frc::command::nack: frc::write_nack(out, "peer", p.link, p.expected_seq); break;
    case frc::command::refuse: frc::write_refuse(out, "peer", p.link, p.refuse); break;
    case frc::command::heartbeat: frc::write_heartbeat_to(out, "peer"); break;
    case frc::command::goodbye:
      if (p.link == 0)
        frc::write_goodbye_to(out, "peer");
      else
        frc::write_goodbye_to(out, "peer", p.link);
      break;
    default: check(false, "the sender accepted a command of the sender's"); return;
  }
  check(same_frames(out, 1, m, 0), "a message at the sender is not what the builder writes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  const std::uint8_t mode = in.byte();
  const message m = in.rest_message(frc::max_entries + 16);
  if (mode % 2 == 0)
    at_receiver(m);
  else
    at_sender(m);
  return 0;
}
