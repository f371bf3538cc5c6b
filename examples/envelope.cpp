// The fabric envelope: a producer wraps typed readings with make_envelope_of (id, producer,
// stream, seq, ttl, user headers); a consumer decodes them and rejects malformed input.
#include <fabric/fabric.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "example_support.hpp"

using namespace fabric_examples;

namespace {

using namespace std::chrono_literals;

// The typed payload. The envelope header says who sent it and where it belongs; the body only
// says what was measured.
struct temperature {
  std::string sensor;
  double celsius = 0;
  std::vector<double> last_minutes;
  MSGPACK_DEFINE(sensor, celsius, last_minutes)
  friend bool operator==(const temperature&, const temperature&) = default;
};

fabric::header make_header(fabric::id_generator& ids, std::uint64_t seq) {
  fabric::header h;
  h.id = ids.next();
  h.producer = "gateway-7";
  h.stream = "lab.temperature";
  h.seq = seq;
  h.timestamp_ns = fabric::unix_now_ns();
  h.ttl_ms = 60'000;  // a reading older than a minute is useless to the consumer
  h.user = {{"unit", "celsius"}, {"site", "lab-2"}};
  return h;
}

void send(fabric::pusher& out, fabric::message&& m, std::string_view what) {
  if (auto s = out.send(std::move(m), patience); !s)
    fail("producer: cannot send " + std::string(what) + ": " + s.error().message());
}

void print_header(const fabric::header& h) {
  std::printf("consumer: envelope id=%s producer=%s stream=%s seq=%llu ttl=%llums\n",
              h.id.to_string().c_str(), h.producer.c_str(), h.stream.c_str(),
              static_cast<unsigned long long>(h.seq), static_cast<unsigned long long>(h.ttl_ms));
  for (const auto& [key, value] : h.user)
    std::printf("consumer:   header %s=%s\n", key.c_str(), value.c_str());
}

void run(transport kind) {
  const endpoints where("envelope", kind);
  fabric::context ctx;

  fabric::puller inbox(ctx);
  const std::string address = inbox.bind(where.bind_address("inbox"));
  fabric::pusher outbox(ctx);
  {
    // A PUSH socket with no live connection holds messages back; waiting for the handshake
    // keeps the send timeouts below about sending, not connecting.
    fabric::monitor events(outbox);
    outbox.connect(address);
    if (kind != transport::inproc &&
        !events.wait_for(fabric::socket_event::handshake_succeeded, patience))
      fail("producer: no connection to " + address + " within 5 s");
  }
  std::printf("producer: connected to %s\n", address.c_str());

  // --- Producer: three good envelopes, one stale one, and three kinds of garbage. ---
  fabric::id_generator ids;
  const std::vector<temperature> readings = {
      {"probe-a", 21.5, {21.0, 21.25}},
      {"probe-b", 19.0, {18.5, 18.75, 19.0}},
      {"probe-a", 21.75, {21.25, 21.5}},
  };
  std::vector<fabric::header> sent;
  for (const auto& r : readings) {
    sent.push_back(make_header(ids, sent.size() + 1));
    send(outbox, fabric::make_envelope_of(sent.back(), r), "an envelope");
  }

  fabric::header stale = make_header(ids, sent.size() + 1);
  stale.timestamp_ns -= std::chrono::nanoseconds(2min).count();  // produced two minutes ago
  send(outbox, fabric::make_envelope_of(stale, temperature{"probe-c", 30.0, {}}),
       "a stale envelope");

  // What a confused or hostile peer might send: the tag followed by bytes that are not a header,
  // a lone tag, and a plain string.
  send(outbox, fabric::make_message(fabric::envelope_tag, "not a header", "body"), "garbage");
  send(outbox, fabric::make_message(fabric::envelope_tag), "a lone tag");
  send(outbox, fabric::make_message("hello"), "a plain string");

  // --- Consumer. ---
  std::size_t accepted = 0;
  std::size_t expired = 0;
  std::size_t rejected = 0;
  const std::size_t total = readings.size() + 4;
  fabric::message m;
  for (std::size_t i = 0; i < total; ++i) {
    if (auto r = inbox.recv(m, patience); !r)
      fail("consumer: message " + std::to_string(i + 1) + " missing: " + r.error().message());
    auto e = fabric::decode_envelope(std::move(m));
    if (!e) {
      // Untrusted input comes back as an error value, never as an exception or a crash.
      check(e.is(fabric::errc::malformed),
            "consumer: expected errc::malformed, got " + e.error().message());
      std::printf("consumer: rejected a message: %s (errc::malformed)\n",
                  e.error().message().c_str());
      ++rejected;
      continue;
    }
    const fabric::header& h = e->header;
    if (h.expired(fabric::unix_now_ns())) {
      std::printf("consumer: dropped seq %llu: older than its ttl of %llu ms\n",
                  static_cast<unsigned long long>(h.seq),
                  static_cast<unsigned long long>(h.ttl_ms));
      check(h == stale, "consumer: a fresh envelope was reported as expired");
      ++expired;
      continue;
    }
    print_header(h);
    check(accepted < sent.size() && h == sent[accepted],
          "consumer: the header did not survive the trip unchanged");
    check(h.find("unit") != nullptr && *h.find("unit") == "celsius",
          "consumer: user header 'unit' is missing");

    auto body = fabric::body_as<temperature>(*e);
    if (!body) fail("consumer: undecodable body: " + body.error().message());
    std::printf("consumer:   body %s %.2f C (%zu earlier samples)\n", body->sensor.c_str(),
                body->celsius, body->last_minutes.size());
    check(*body == readings[accepted], "consumer: the body did not survive the trip unchanged");

    // Decoding into the wrong type is caught too.
    auto wrong = fabric::body_as<std::string>(*e);
    check(wrong.is(fabric::errc::malformed), "consumer: a temperature decoded as a string");
    ++accepted;
  }
  std::printf("consumer: %zu accepted, %zu expired, %zu rejected\n", accepted, expired, rejected);
  check(accepted == readings.size() && expired == 1 && rejected == 3,
        "consumer: wrong number of accepted, expired or rejected messages");
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-envelope [--transport inproc|ipc|tcp] [--help]\n"
               "  Sends typed readings in fabric envelopes (plus a stale one and some garbage)\n"
               "  and decodes them on the other side. Default transport: tcp on 127.0.0.1 with\n"
               "  a port the OS picks.\n");
}

}  // namespace

int main(int argc, char** argv) {
  transport kind = transport::tcp;
  return run_example({.program = "envelope", .print_usage = print_usage, .kind = &kind},
                     argc, argv, [&] { run(kind); });
}
