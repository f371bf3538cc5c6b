// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from fabric's own
// builders, so that every seed is a valid input the fuzzer can mutate from. Deterministic: the
// same tree writes the same files. Run through scripts/fuzz-corpus.sh.
//
//   fabric-fuzz-make-corpus DIR     writes DIR/<target>/<name> for every target
#include "fuzz_frames.hpp"

#include "journal/record.hpp"
#include "reliability/frc.hpp"
#include "reliability/frc_receiver.hpp"
#include "reliability/frq.hpp"
#include "reliability/frs.hpp"
#include "reliability/mdp.hpp"
#include "reliability/ppp.hpp"
#include "reliability/titanic_replication.hpp"
#include "reliability/titanic_store.hpp"
#include "reliability/tsp.hpp"

#include <fabric/codec.hpp>
#include <fabric/envelope.hpp>
#include <fabric/security.hpp>

#include <lmdb.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace {

using fabric::message;
using fabric::fuzz::put_counted;
using fabric::fuzz::put_frame;
using fabric::fuzz::put_frames;
using fabric::fuzz::put_number;

std::filesystem::path root;
std::size_t written = 0;

void write(const std::string& target, const std::string& name, const std::string& bytes) {
  const auto dir = root / target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + (dir / name).string());
  ++written;
}

// A seed for the targets that read a mode octet and then `rest` frames.
void write_frames(const std::string& target, const std::string& name, std::uint8_t mode, const message& m) {
  std::string s(1, static_cast<char>(mode));
  put_frames(s, m);
  write(target, name, s);
}

message with_peer(std::string_view peer, message&& m) {
  message out = std::move(m);
  out.push_front(peer);
  return out;
}

message body(std::initializer_list<std::string_view> frames) {
  message m;
  for (auto f : frames) m.push_back(f);
  return m;
}

// --- envelope -----------------------------------------------------------------------------------

fabric::header sample_header(int variant) {
  fabric::header h;
  for (std::size_t i = 0; i < h.id.bytes.size(); ++i) h.id.bytes[i] = static_cast<std::uint8_t>(i * 7 + static_cast<std::size_t>(variant));
  h.producer = "billing-1";
  if (variant > 0) h.stream = "payments";
  h.seq = 42 + static_cast<std::uint64_t>(variant);
  h.timestamp_ns = 1'700'000'000'000'000'000 + variant;
  if (variant > 1) h.ttl_ms = 30'000;
  if (variant > 2) h.user = {{"trace", "abc123"}, {"content-type", "application/msgpack"}};
  return h;
}

void envelope() {
  for (int v = 0; v < 4; ++v) {
    std::string s(1, '\0');
    s.append(fabric::view(fabric::encode_header(sample_header(v))));
    write("envelope", "header-" + std::to_string(v), s);
    write_frames("envelope", "envelope-" + std::to_string(v), 1,
                 fabric::make_envelope(sample_header(v), body({"hello", "", "world"})));
  }
  write_frames("envelope", "envelope-typed", 1,
               fabric::make_envelope_of(sample_header(3), std::make_tuple(std::string("probe"), 21.5)));
}

// --- codec --------------------------------------------------------------------------------------

template <class T>
void codec_seed(const std::string& name, const T& value, std::uint8_t choice = 0) {
  std::string s(1, static_cast<char>(choice));
  if (choice & 1) put_number(s, 64, 2);
  if (choice & 2) s.push_back(8);
  s.append(fabric::view(fabric::pack(value)));
  write("codec", name, s);
}

void codec() {
  codec_seed("string", std::string("hello"));
  codec_seed("int", std::int64_t{-123456789});
  codec_seed("uints", std::vector<std::uint32_t>{1, 2, 300, 70000});
  codec_seed("map", std::map<std::string, std::vector<std::string>>{{"a", {"x", "y"}}, {"b", {}}});
  codec_seed("policy", std::make_tuple(std::uint64_t{100}, std::uint64_t{1} << 20, std::int64_t{3600},
                                       std::vector<std::string>{"audit"}));
  codec_seed("dead-letter", std::make_tuple(std::string("orders"), std::uint64_t{7}, std::string("poison"),
                                            std::uint32_t{5}, std::int64_t{1'700'000'000}, std::string("payload")));
  codec_seed("timed", std::make_tuple(std::string("orders"), std::string("body")));
  codec_seed("reading", std::make_tuple(std::string("probe-a"), 21.5, std::int64_t{1'700'000'000},
                                        std::vector<std::string>{"lab"},
                                        std::map<std::string, std::string>{{"unit", "C"}}));
  codec_seed("nested-limited", std::vector<std::vector<std::vector<int>>>{{{1, 2}, {3}}, {{4}}}, 3);
  codec_seed("double", 3.25);
  codec_seed("bool-nil", std::make_tuple(true, false, msgpack::type::nil_t()));
}

// --- mdp ----------------------------------------------------------------------------------------

void mdp() {
  namespace mdp = fabric::mdp;
  write_frames("mdp", "client-request", 0, mdp::client_request_msg("echo", body({"hello"})));
  write_frames("mdp", "client-request-frames", 0, mdp::client_request_msg("mmi.service", body({"echo", "", "x"})));
  write_frames("mdp", "reply-dealer", 1, mdp::client_reply("echo", body({"world"})));
  write_frames("mdp", "reply-req", 2, mdp::client_request_msg("echo", body({"world"}), mdp::delimiter::stripped));
  write_frames("mdp", "worker-ready", 3, mdp::worker_ready("echo"));
  write_frames("mdp", "worker-ready-credit", 3, mdp::worker_ready("echo", 16));
  write_frames("mdp", "worker-reply", 3, mdp::worker_reply("client-7", body({"done"})));
  write_frames("mdp", "worker-heartbeat", 3, mdp::worker_heartbeat());
  write_frames("mdp", "worker-disconnect", 3, mdp::worker_disconnect());
  write_frames("mdp", "to-worker-request", 4, mdp::worker_request("client-7", body({"job", "part"})));
  write_frames("mdp", "to-worker-heartbeat", 4, mdp::worker_heartbeat());
  write_frames("mdp", "to-worker-disconnect", 4, mdp::worker_disconnect());
  const std::uint8_t router = 5 + 6 * 8;  // parse_broker_input with up to 8 return frames
  write_frames("mdp", "router-client", router, with_peer("C1", mdp::client_request_msg("echo", body({"hi"}))));
  message stacked = mdp::client_request_msg("echo", body({"hi"}));
  stacked.push_front("hop-2");
  stacked.push_front("hop-1");
  write_frames("mdp", "router-client-stack", router, with_peer("C1", std::move(stacked)));
  write_frames("mdp", "router-ready", router, with_peer("W1", mdp::worker_ready("echo", 4)));
  write_frames("mdp", "router-reply", router, with_peer("W1", mdp::worker_reply("C1", body({"ok"}))));
  write_frames("mdp", "router-heartbeat", router, with_peer("W1", mdp::worker_heartbeat()));
  write_frames("mdp", "router-disconnect", router, with_peer("W1", mdp::worker_disconnect()));
}

// --- mdp_broker: options octets, then events (see fuzz_mdp_broker.cpp) --------------------------

std::string broker_options(std::uint8_t shape) {
  std::string s(1, static_cast<char>(shape));
  // queued per service, total, services, workers, dispatches, return frames, credit, peer, total bytes
  for (const int b : {7, 15, 3, 5, 2, 2, 3, 40, 60}) s.push_back(static_cast<char>(b));
  return s;
}
void event(std::string& s, std::uint8_t op, std::uint8_t peer) { s.push_back(static_cast<char>(op | (peer << 4))); }

void mdp_broker() {
  namespace mdp = fabric::mdp;
  {  // a worker registers, a client asks, the worker answers
    std::string s = broker_options(0x01);
    event(s, 2, 1), s.push_back(1), s.push_back(0);   // READY credit 2 for "echo"
    event(s, 1, 2), s.push_back(0), put_frame(s, "hello");  // request to "echo"
    event(s, 3, 0), s.push_back(0), put_frame(s, "world");  // the worker's reply
    write("mdp_broker", "request-reply", s);
  }
  {  // requests queue with no worker, then expire
    std::string s = broker_options(0x02);
    for (int i = 0; i < 4; ++i) event(s, 1, static_cast<std::uint8_t>(i)), s.push_back(1), put_frame(s, "job");
    event(s, 5, 0), s.push_back(static_cast<char>(200));
    event(s, 2, 4), s.push_back(0), s.push_back(1);
    write("mdp_broker", "queue-expire", s);
  }
  {  // a worker goes silent and is purged while holding a request
    std::string s = broker_options(0x0a);
    event(s, 2, 1), s.push_back(2), s.push_back(0);
    event(s, 1, 2), s.push_back(0), put_frame(s, "a");
    event(s, 1, 3), s.push_back(0), put_frame(s, "b");
    for (int i = 0; i < 5; ++i) event(s, 5, 0), s.push_back(40);
    event(s, 3, 0), s.push_back(0), put_frame(s, "late");
    write("mdp_broker", "worker-expires", s);
  }
  {  // MMI and raw frames, a full client and a gone worker
    std::string s = broker_options(0x04);
    event(s, 1, 2), s.push_back(2), put_frame(s, "echo");
    event(s, 6, 2);
    event(s, 2, 1), s.push_back(0), s.push_back(0);
    event(s, 7, 1);
    event(s, 1, 2), s.push_back(0), put_frame(s, "x");
    event(s, 0, 3), put_counted(s, mdp::client_request_msg("work", body({"raw"})));
    event(s, 0, 4), put_counted(s, mdp::worker_ready("work", 3));
    event(s, 0, 4), put_counted(s, mdp::worker_request("C1", body({"wrong way"})));
    event(s, 4 | 8, 4);
    event(s, 5, 0), s.push_back(30);
    write("mdp_broker", "mmi-and-raw", s);
  }
}

// --- ppp: options octets, then events (see fuzz_ppp.cpp) ----------------------------------------

void ppp() {
  auto options = [](std::uint8_t shape) {
    std::string s(1, static_cast<char>(shape));
    for (const int b : {4, 3, 1}) s.push_back(static_cast<char>(b));
    return s;
  };
  {
    std::string s = options(0x01);
    event(s, 2, 1);                                      // READY
    event(s, 1, 2), put_frame(s, "request");             // a client's request
    event(s, 3, 0), s.push_back(0), put_frame(s, "reply");  // the worker's reply
    event(s, 2 | 8, 1);                                  // HEARTBEAT
    write("ppp", "request-reply", s);
  }
  {
    std::string s = options(0x31);
    for (int i = 0; i < 6; ++i) event(s, 1, static_cast<std::uint8_t>(i)), put_frame(s, "r");
    event(s, 4, 0), s.push_back(static_cast<char>(100));
    event(s, 2, 3);
    event(s, 5, 3);
    event(s, 4, 0), s.push_back(static_cast<char>(100));
    write("ppp", "overflow-expiry", s);
  }
  {
    std::string s = options(0x02);
    message client = body({"hop", "", "content"});
    event(s, 0, 2), put_counted(s, client);
    event(s, 0 | 8, 1), put_counted(s, fabric::ppp::ready_message());
    event(s, 0 | 8, 1), put_counted(s, body({"C2", "", "reply"}));
    write("ppp", "raw", s);
  }
}

// --- flp: a shape octet, the first sequence octet, then events (see fuzz_flp.cpp) -----------------

void flp() {
  const auto start = [](std::uint8_t shape) {
    std::string s(1, static_cast<char>(shape));
    s.push_back(1);  // the first sequence number
    return s;
  };
  {  // pongs, a request, its answer, the completion
    std::string s = start(0x10);
    event(s, 2 | 8, 0), event(s, 2 | 8, 1);
    event(s, 1, 0), put_frame(s, "hello"), s.push_back(100);
    event(s, 2, 0), s.push_back(0), put_frame(s, "answer");
    event(s, 7, 0);
    write("flp", "request-reply", s);
  }
  {  // a server vanishes with a request in hand; time passes; the request goes elsewhere
    std::string s = start(0x24);
    event(s, 2 | 8, 0), event(s, 2 | 8, 1), event(s, 2 | 8, 2);
    for (int i = 0; i < 4; ++i) event(s, 1, 0), put_frame(s, "r"), s.push_back(50);
    event(s, 4, 0), s.push_back(1);
    event(s, 3, 0), s.push_back(static_cast<char>(40));
    event(s, 3, 0), s.push_back(static_cast<char>(200));
    event(s, 7, 0);
    write("flp", "failover", s);
  }
  {  // raw frames at the client and at the server
    std::string s = start(0x03);
    event(s, 0, 0), put_counted(s, body({"PONG"}));
    event(s, 0, 3), put_counted(s, body({"PONG"}));
    event(s, 0, 1), put_counted(s, body({std::string_view("\0\0\0\0\0\0\0\1", 8), "late"}));
    event(s, 0, 1), put_counted(s, body({"17", "not ours"}));
    event(s, 6, 2), put_counted(s, body({"PING"}));
    event(s, 6, 2), put_counted(s, body({"ccf", "request"})), put_counted(s, body({"reply"}));
    event(s, 6, 2), put_counted(s, body({"nonsense"}));
    write("flp", "raw", s);
  }
}

// --- ftr: a mode octet, then FTR/1 frames (even) or an entry's ops (odd) ------------------------

void ftr() {
  namespace repl = fabric::titanic::repl;
  namespace store = fabric::titanic::store;
  fabric::tsp::uuid id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = static_cast<std::uint8_t>(0x20 + i * 7);
  write_frames("ftr", "fetch", 0, repl::build_fetch({41, 6}, 1 << 20));
  write_frames("ftr", "resync", 0, repl::build_resync({99, 9}, {40, 6}));
  write_frames("ftr", "handed", 0, repl::build_handed(3, 4));
  write_frames("ftr", "snapshot-fetch", 0, repl::build_snapshot_fetch(id));
  message snap = repl::build_snapshot({7, 4}, true, id);
  write_frames("ftr", "snapshot", 0, snap);
  std::vector<fabric::tsp::request_change> changes;
  fabric::tsp::request_change stored{.kind = fabric::tsp::change_kind::stored, .id = id, .key = "k-1", .service = "echo"};
  stored.body = body({"hello", "world"});
  changes.push_back(std::move(stored));
  changes.push_back({.kind = fabric::tsp::change_kind::attempt, .id = id, .attempts = 2});
  fabric::tsp::request_change replied{.kind = fabric::tsp::change_kind::replied, .id = id};
  replied.body = body({"answer"});
  changes.push_back(std::move(replied));
  changes.push_back({.kind = fabric::tsp::change_kind::given_up, .id = id, .attempts = 5, .reason = "too many attempts"});
  changes.push_back({.kind = fabric::tsp::change_kind::removed, .id = id, .index = std::string(24, 'x')});
  const std::string ops = store::encode_ops(6, 1'700'000'000'000'000'000, changes);
  write("ftr", "ops", std::string(1, '\x01') + ops);
  message records = repl::build_records({42, 6});
  records.push_back(store::be64(42) + ops);
  write_frames("ftr", "records", 0, records);
  message handoff = repl::build_handoff();
  handoff.push_back(ops);
  write_frames("ftr", "handoff", 0, handoff);
}

// --- tsp ----------------------------------------------------------------------------------------

void tsp() {
  namespace tsp = fabric::tsp;
  tsp::uuid id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = static_cast<std::uint8_t>(0x10 + i * 11);
  message m;
  tsp::write_request(m, "echo", body({"hello", "world"}));
  write_frames("tsp", "request", 0, m);
  tsp::write_keyed_request(m, "client-key-1", "echo", body({"hello"}));
  write_frames("tsp", "keyed-request", 1, m);
  tsp::write_uuid_request(m, id);
  write_frames("tsp", "uuid-request", 2, m);
  tsp::write_request_reply(m, id);
  write_frames("tsp", "request-reply-ok", 3, m);
  tsp::write_request_reply(m, tsp::status::error, "journal full");
  write_frames("tsp", "request-reply-error", 3, m);
  tsp::write_reply_reply(m, body({"answer", ""}), "done");
  write_frames("tsp", "reply-reply-ok", 4, m);
  tsp::write_reply_reply(m, tsp::status::pending);
  write_frames("tsp", "reply-reply-pending", 4, m);
  tsp::write_close_reply(m);
  write_frames("tsp", "close-reply", 5, m);
  tsp::write_close_reply(m, tsp::status::unknown, "no such request");
  write_frames("tsp", "close-reply-unknown", 5, m);
  write("tsp", "status", std::string(1, 6) + tsp::status_frame(tsp::status::ok, "fine"));
  write("tsp", "uuid", std::string(1, 6) + tsp::to_string(id));
}

// --- tsp_server: settings octets, then events (see fuzz_tsp_server.cpp) --------------------------

void tsp_server() {
  {  // a request stored, dispatched to a service with workers, replied, fetched and closed
    std::string s(1, 0x05);
    for (const int b : {200, 4, 2, 4}) s.push_back(static_cast<char>(b));
    s.push_back(0), put_frame(s, "hello");  // titanic.request to echo
    s.push_back(8);                          // commit: the 200 goes out
    s.push_back(7 | 0x20);                   // echo has workers
    s.push_back(9), s.push_back(4);          // time passes: dispatch
    s.push_back(5), s.push_back(0), put_frame(s, "world");  // the service's reply
    s.push_back(8);                          // commit the reply
    s.push_back(2), s.push_back(0);          // titanic.reply
    s.push_back(3), s.push_back(0);          // titanic.close
    s.push_back(8);
    write("tsp_server", "lifecycle", s);
  }
  {  // keyed requests, a service without workers, timeouts, a failed commit and raw bodies
    std::string s(1, static_cast<char>(0x51));
    for (const int b : {100, 2, 1, 2}) s.push_back(static_cast<char>(b));
    s.push_back(1), s.push_back(0), put_frame(s, "a");
    s.push_back(1), s.push_back(0), put_frame(s, "a");  // the same key again
    s.push_back(8 | 0x10);                               // the commit fails
    s.push_back(12);
    s.push_back(8);
    s.push_back(7 | 0x10);                               // work: no workers
    s.push_back(0 | 0x10), put_frame(s, "job");
    s.push_back(8);
    for (int i = 0; i < 4; ++i) s.push_back(9), s.push_back(40);
    s.push_back(6), s.push_back(0);                      // a dispatch expires
    s.push_back(4), put_counted(s, body({"echo", "raw"}));
    s.push_back(4 | 0x20), put_counted(s, body({"not-a-uuid"}));
    write("tsp_server", "keys-and-failures", s);
  }
}

// --- frc ----------------------------------------------------------------------------------------

void frc() {
  namespace frc = fabric::frc;
  message m;
  frc::write_hello(m, 7, {"orders", "billing-1", 0, 0x1122334455667788, 10, 12, 1000});
  write_frames("frc", "hello", 0, with_peer("S1", std::move(m)));
  {
    message d;
    frc::data_writer w(d, 7, 11);
    w.add(0, "first");
    w.add(5000, "second");
    w.add(0, "");
    w.finish();
    write_frames("frc", "data", 0, with_peer("S1", std::move(d)));
  }
  frc::write_skip(m, 7, {13, 15, "expired"});
  write_frames("frc", "skip", 0, with_peer("S1", std::move(m)));
  frc::write_heartbeat(m);
  write_frames("frc", "heartbeat", 0, with_peer("S1", std::move(m)));
  frc::write_goodbye(m, 7);
  write_frames("frc", "goodbye-link", 0, with_peer("S1", std::move(m)));
  frc::write_goodbye(m);
  write_frames("frc", "goodbye", 0, with_peer("S1", std::move(m)));

  // At the sender: drop the routing id the receiver's builders write.
  auto sender = [](const std::string& name, message&& out) {
    out.pop_front();
    write_frames("frc", name, 1, out);
  };
  message o;
  frc::write_welcome(o, "S1", 7, {0x99, 10, 64, 1000, 1 << 20});
  sender("welcome", std::move(o));
  const std::uint64_t expired[] = {3, 5, 9};
  frc::write_ack(o, "S1", 7, 12, 64, expired);
  sender("ack", std::move(o));
  frc::write_nack(o, "S1", 7, 11);
  sender("nack", std::move(o));
  frc::write_refuse(o, "S1", 7, {"too-large", "message over 1 MiB"});
  sender("refuse", std::move(o));
  frc::write_version_refusal(o, "S1");
  sender("refuse-version", std::move(o));
  frc::write_heartbeat_to(o, "S1");
  sender("heartbeat-to", std::move(o));
  frc::write_goodbye_to(o, "S1", 7);
  sender("goodbye-to", std::move(o));
}

// --- frc_receiver: settings octets, then events (see fuzz_frc_receiver.cpp) ----------------------

void frc_receiver() {
  auto settings = [](std::uint8_t shape) {
    std::string s(1, static_cast<char>(shape));
    for (const int b : {2, 4, 4, 3, 64}) s.push_back(static_cast<char>(b));
    return s;
  };
  // op (low bits: the event; bit 3: its variant; high bits: the peer), then the link octet.
  auto op = [](std::string& s, std::uint8_t what, std::uint8_t peer, std::uint8_t link) {
    event(s, what, peer);
    s.push_back(static_cast<char>(link));
  };
  {  // first contact, committed, then data in order, committed, and a skip
    std::string s = settings(0x07);
    op(s, 1, 0, 0), s.push_back(0x13), s.push_back(0), s.push_back(0);  // HELLO acked 0 last 0
    op(s, 5, 0, 0);                                                       // commit
    op(s, 2, 0, 0), s.push_back(0), s.push_back(2);                       // DATA 1..3
    for (const char* body : {"a", "b", "c"}) put_frame(s, body);
    op(s, 5, 0, 0);
    op(s, 3, 0, 0), s.push_back(3), s.push_back(1);                       // SKIP 4..5
    op(s, 5, 0, 0);
    op(s, 6, 0, 0), s.push_back(60);                                      // time passes
    op(s, 4 | 8, 0, 0);                                                   // GOODBYE
    write("frc_receiver", "in-order", s);
  }
  {  // a failed commit, a gap, expiring messages and a second sender
    std::string s = settings(0x03);
    op(s, 1, 1, 1), s.push_back(0x11), s.push_back(2), s.push_back(3);
    op(s, 5, 0, 0);
    op(s, 2 | 8, 1, 1), s.push_back(2), s.push_back(1);
    put_frame(s, "x"), put_frame(s, "y");
    op(s, 6, 0, 0), s.push_back(10);
    op(s, 5 | 8, 0, 0);                                                   // the commit fails
    op(s, 2, 1, 1), s.push_back(9), s.push_back(0), put_frame(s, "gap");
    op(s, 1, 2, 2), s.push_back(0x26), s.push_back(0), s.push_back(0);
    op(s, 7 | 8, 0, 0);                                                   // loads fail
    op(s, 5, 0, 0);
    op(s, 6, 0, 0), s.push_back(static_cast<char>(200));
    write("frc_receiver", "failures", s);
  }
  {  // raw messages from a peer
    std::string s = settings(0x01);
    message hello;
    fabric::frc::write_hello(hello, 3, {"orders", "svc-a", 0, 9, 0, 0, 500});
    op(s, 0, 0, 0), put_counted(s, hello);
    message data;
    fabric::frc::data_writer w(data, 3, 1);
    w.add(0, "raw");
    w.finish();
    op(s, 5, 0, 0);
    op(s, 0, 0, 0), put_counted(s, data);
    op(s, 5, 0, 0);
    write("frc_receiver", "raw", s);
  }
  {  // the journal decoders
    std::string s(1, static_cast<char>(0xFF));
    s += fabric::frc::encode_record({9, 41});
    write("frc_receiver", "decode-record", s);
    s.resize(1);
    s += fabric::frc::encode_seqs({3, 5, 8});
    write("frc_receiver", "decode-seqs", s);
    s.resize(1);
    s += fabric::frc::channel_key("svc-a", "orders");
    write("frc_receiver", "decode-key", s);
  }
}

// --- frs ----------------------------------------------------------------------------------------

void frs() {
  namespace frs = fabric::frs;
  message m;
  frs::write_live(m, "prices", 0xABCDEF, 17, 1'700'000'000'000'000'000, "tick");
  write_frames("frs", "live", 0, m);
  frs::write_beacon(m, "prices", 0xABCDEF, 17);
  write_frames("frs", "beacon", 0, m);
  frs::write_heartbeat(m, 0xABCDEF, 1000);
  write_frames("frs", "heartbeat", 0, m);
  frs::write_fetch(m, 3, {"prices", 5, 100});
  write_frames("frs", "fetch", 1, with_peer("P1", std::move(m)));
  frs::write_fetch_time(m, 4, {"prices", 1'700'000'000'000'000'000, 1024});
  write_frames("frs", "fetch-time", 1, with_peer("P1", std::move(m)));

  auto subscriber = [](const std::string& name, message&& out) {
    out.pop_front();
    write_frames("frs", name, 2, out);
  };
  {
    message b;
    frs::batch_writer w(b, "P1", 3, 0xABCDEF, 5);
    w.add(1, "five");
    w.add(2, "");
    w.add(3, "seven");
    w.finish();
    subscriber("batch", std::move(b));
  }
  message o;
  frs::write_end(o, "P1", 3, 0xABCDEF, {8, 20});
  subscriber("end", std::move(o));
  frs::write_gone(o, "P1", 3, 0xABCDEF, {1, 5});
  subscriber("gone", std::move(o));
  frs::write_refuse(o, "P1", 3, {"no-stream", "prices is not published here"});
  subscriber("refuse", std::move(o));
  frs::write_version_refusal(o, "P1");
  subscriber("refuse-version", std::move(o));
}

// --- frs_subscriber: settings octets, then events (see fuzz_frs_subscriber.cpp) ------------------

void frs_subscriber() {
  auto live = [](std::string& s, std::uint8_t seq, std::string_view body) {
    event(s, 2, 0);
    s.push_back(static_cast<char>(seq - 1));
    put_frame(s, body);
  };
  {  // live from the start, a gap fetched and answered with a BATCH, then drained
    std::string s(1, 0);  // start: latest
    for (const int b : {3, 2, 4, 1, 8}) s.push_back(static_cast<char>(b));
    event(s, 0, 0);  // follow "orders"
    live(s, 1, "one");
    live(s, 2, "two");
    live(s, 5, "five");  // a gap: 3 and 4 are fetched
    event(s, 4, 0), s.push_back(0), s.push_back(0), s.push_back(1);  // BATCH of 2
    put_frame(s, "three"), put_frame(s, "four");
    event(s, 6, 0);
    event(s, 3, 0), s.push_back(5);  // BEACON last 5
    event(s, 5, 0), s.push_back(100);
    write("frs_subscriber", "gap-fetched", s);
  }
  {  // history from sequence 1: END, GONE and REFUSE answers, a heartbeat, a second stream
    std::string s(1, 1);
    s.push_back(0);  // from_seq 1
    for (const int b : {3, 2, 4, 2, 8}) s.push_back(static_cast<char>(b));
    event(s, 0, 0);
    event(s, 0, 1);
    event(s, 4, 0), s.push_back(0), s.push_back(2 << 2), s.push_back(3);  // GONE 1..4
    event(s, 4, 0), s.push_back(1), s.push_back(1 << 2), s.push_back(9);  // END
    event(s, 4, 0), s.push_back(0), s.push_back(3 << 2);                  // REFUSE
    event(s, 3 | 0x80, 0);                                                 // HEARTBEAT
    event(s, 5, 0), s.push_back(static_cast<char>(250));
    event(s, 9, 0);
    write("frs_subscriber", "history", s);
  }
}

// --- frq ----------------------------------------------------------------------------------------

void frq() {
  namespace frq = fabric::frq;
  message m;
  frq::write_hello(m, {"worker-a", 0x55, "resize", 8, 1000});
  write_frames("frq", "hello", 0, with_peer("W1", std::move(m)));
  frq::write_capacity(m, 4);
  write_frames("frq", "capacity", 0, with_peer("W1", std::move(m)));
  frq::write_result(m, 0x77, {9, 1}, frq::status::done, "result bytes");
  write_frames("frq", "result-done", 0, with_peer("W1", std::move(m)));
  frq::write_result(m, 0x77, {9, 2}, frq::status::failed, "try later");
  write_frames("frq", "result-failed", 0, with_peer("W1", std::move(m)));
  frq::write_extend(m, 0x77, {9, 1}, 30'000);
  write_frames("frq", "extend", 0, with_peer("W1", std::move(m)));
  frq::write_worker_heartbeat(m);
  write_frames("frq", "worker-heartbeat", 0, with_peer("W1", std::move(m)));
  frq::write_bye(m);
  write_frames("frq", "bye", 0, with_peer("W1", std::move(m)));

  auto worker = [](const std::string& name, message&& out) {
    out.pop_front();
    write_frames("frq", name, 1, out);
  };
  message o;
  frq::write_welcome(o, "W1", 0x77, 1000);
  worker("welcome", std::move(o));
  frq::write_task(o, "W1", 0x77, {{9, 1}, 3, 60'000, 1'700'000'000'000'000'000}, "image.png");
  worker("task", std::move(o));
  frq::write_recorded(o, "W1", 0x77, {9, 1}, frq::verdict::stale);
  worker("recorded", std::move(o));
  frq::write_cancel(o, "W1", 0x77, {9, 1});
  worker("cancel", std::move(o));
  frq::write_producer_heartbeat(o, "W1", 0x77);
  worker("producer-heartbeat", std::move(o));
  frq::write_refuse(o, "W1", {"unknown-queue", "no queue named resize"});
  worker("refuse", std::move(o));
  frq::write_version_refusal(o, "W1");
  worker("refuse-version", std::move(o));
}

// --- record -------------------------------------------------------------------------------------

void record() {
  namespace jd = fabric::journal_detail;
  auto seed = [](const std::string& name, std::uint8_t mode, std::string_view stream, std::uint64_t seq,
                 std::uint8_t flags, std::string_view payload) {
    std::string value(jd::record_size(payload.size()), '\0');
    jd::encode_record(stream, seq, 1'700'000'000'000'000'000, flags, payload,
                      reinterpret_cast<std::byte*>(value.data()));
    std::string s(1, static_cast<char>(mode));
    put_frame(s, stream);
    put_number(s, seq, 8);
    s += value;
    write("record", name, s);
  };
  seed("plain", 0, "orders", 1, 0, "payload");
  seed("empty", 0, "orders", 2, 0, "");
  seed("envelope", 0, "events", 77, jd::flag_envelope, "FAB1...");
  seed("fix-crc", 1, "s", 0xFFFFFFFFFFFFFFFF, 0, "x");
  // A version-1 record: the version octet rewritten, and its CRC left for the target to fix.
  std::string value(jd::record_size(3), '\0');
  jd::encode_record("orders", 5, 0, 0, "old", reinterpret_cast<std::byte*>(value.data()));
  value[jd::record_crc_from] = static_cast<char>(jd::record_version_1);
  std::string s(1, 1);
  put_frame(s, "orders");
  put_number(s, 5, 8);
  write("record", "version-1", s + value);
}

// --- data_file: a small LMDB environment's data.mdb ---------------------------------------------

void lmdb_ok(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string(what) + ": " + mdb_strerror(rc));
}

// Writes data.mdb with two named databases, a value on overflow pages and freed pages, and
// returns its bytes.
std::string small_environment(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  MDB_env* env = nullptr;
  lmdb_ok(mdb_env_create(&env), "mdb_env_create");
  lmdb_ok(mdb_env_set_maxdbs(env, 4), "mdb_env_set_maxdbs");
  lmdb_ok(mdb_env_open(env, dir.c_str(), 0, 0644), "mdb_env_open");
  auto put_all = [&](bool second) {
    MDB_txn* txn = nullptr;
    lmdb_ok(mdb_txn_begin(env, nullptr, 0, &txn), "mdb_txn_begin");
    for (const char* name : {"s/orders", "x/counters"}) {
      MDB_dbi dbi = 0;
      lmdb_ok(mdb_dbi_open(txn, name, MDB_CREATE, &dbi), "mdb_dbi_open");
      for (std::uint64_t seq = 1; seq <= 6; ++seq) {
        std::string key;
        put_number(key, seq, 8);
        std::string value = second ? std::string(seq == 3 ? 5000 : 40, 'v') : "first";
        MDB_val k{key.size(), key.data()};
        MDB_val v{value.size(), value.data()};
        if (second && seq == 5)
          lmdb_ok(mdb_del(txn, dbi, &k, nullptr), "mdb_del");
        else
          lmdb_ok(mdb_put(txn, dbi, &k, &v, 0), "mdb_put");
      }
    }
    lmdb_ok(mdb_txn_commit(txn), "mdb_txn_commit");
  };
  put_all(false);
  put_all(true);
  mdb_env_close(env);
  std::string bytes(static_cast<std::size_t>(std::filesystem::file_size(dir / "data.mdb")), '\0');
  std::ifstream in(dir / "data.mdb", std::ios::binary);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!in) throw std::runtime_error("cannot read " + (dir / "data.mdb").string());
  return bytes;
}

void data_file() {
  const auto dir = std::filesystem::temp_directory_path() / ("fabric-fuzz-corpus-" + std::to_string(::getpid()));
  std::string file;
  try {
    file = small_environment(dir);
  } catch (...) {
    std::filesystem::remove_all(dir);
    throw;
  }
  std::filesystem::remove_all(dir);
  for (const int mode : {0, 3, 4}) write("data_file", "environment-" + std::to_string(mode), std::string(1, static_cast<char>(mode)) + file);
}

// Certificates made from a fixed secret key (so the seeds do not change from run to run): public
// and secret, with metadata, comments, both quote marks, unquoted values and CRLF line ends.
void curve_cert() {
  const std::string secret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";
  const fabric::curve_keypair keys = fabric::curve_keypair::from_secret(secret);
  const fabric::curve_certificate plain{keys.public_key, keys.secret_key, {}};
  const fabric::curve_certificate named{keys.public_key, keys.secret_key,
                                        {{"name", "broker-1"}, {"email", "ops@example.org"}}};
  write("curve_cert", "public", fabric::format_curve_certificate(plain, false));
  write("curve_cert", "secret", fabric::format_curve_certificate(plain, true, "a heading\nof two lines"));
  write("curve_cert", "metadata", fabric::format_curve_certificate(named, false, "with metadata"));
  write("curve_cert", "metadata-secret", fabric::format_curve_certificate(named, true));
  write("curve_cert", "hand-written",
        "#   written by hand\r\n\r\nmetadata\r\n    quote = 'say \"hi\"'   # trailing\r\n"
        "    bare = value\r\nother\r\n    nested\r\n        deeper = \"x\"\r\ncurve\r\n"
        "    public-key = " + keys.public_key + "\r\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::string_view(argv[1]) == "--help") {
    std::fprintf(stderr, "usage: %s DIR\nWrites the seed corpus of every fuzz target into DIR/<target>/.\n", argv[0]);
    return argc == 2 ? 0 : 2;
  }
  try {
    root = argv[1];
    envelope();
    codec();
    mdp();
    mdp_broker();
    ppp();
    flp();
    tsp();
    tsp_server();
    ftr();
    frc();
    frc_receiver();
    frs();
    frs_subscriber();
    frq();
    record();
    data_file();
    curve_cert();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fabric-fuzz-make-corpus: %s\n", e.what());
    return 1;
  }
  std::printf("wrote %zu seeds under %s\n", written, root.c_str());
  return 0;
}
