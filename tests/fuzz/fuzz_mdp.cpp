// Fuzz target: the 7/MDP frame parsers (src/reliability/mdp.hpp), every one the broker, client and
// worker apply to what they receive. The first octet picks the parser; the rest is the frames.
// What a parser accepts must rebuild, through the builders, into a message that parses to the
// same values; parse_broker_input must agree with parse_client and parse_worker.
#include "fuzz_frames.hpp"

#include "reliability/mdp.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace {

using fabric::message;
using fabric::fuzz::check;
namespace mdp = fabric::mdp;

bool same_body(const message& a, const message& b) { return fabric::fuzz::same_frames(a, 0, b, 0); }

void client_request(const message& input) {
  auto r = mdp::parse_client(input.clone());
  if (!r) return;
  check(!r->body.empty(), "parse_client accepted a request without a body");
  message rebuilt = mdp::client_request_msg(r->service, r->body.clone());
  check(fabric::fuzz::same_frames(rebuilt, 0, input, 0), "a client request is not what the builder writes");
}

void reply_for_client(const message& input, mdp::delimiter d) {
  auto r = mdp::parse_reply_for_client(input.clone(), d);
  if (!r || r->body.empty()) return;
  message rebuilt = mdp::client_request_msg(r->service, r->body.clone(), d);
  auto again = mdp::parse_reply_for_client(std::move(rebuilt), d);
  check(again && again->service == r->service && same_body(again->body, r->body),
        "a client's reply parses differently once rebuilt");
}

message rebuild_command(const mdp::worker_command& c) {
  switch (c.kind) {
    case mdp::command::ready: return mdp::worker_ready(c.service, c.credit);
    case mdp::command::request: return mdp::worker_request(c.client, c.body.clone());
    case mdp::command::reply: return mdp::worker_reply(c.client, c.body.clone());
    case mdp::command::heartbeat: return mdp::worker_heartbeat();
    case mdp::command::disconnect: return mdp::worker_disconnect();
  }
  return {};
}

bool same_command(const mdp::worker_command& a, const mdp::worker_command& b) {
  return a.kind == b.kind && a.service == b.service && a.client == b.client && a.credit == b.credit &&
         same_body(a.body, b.body);
}

void from_worker(const message& input) {
  auto r = mdp::parse_worker(input.clone());
  if (!r) return;
  check(r->kind != mdp::command::request, "parse_worker accepted a REQUEST");
  auto again = mdp::parse_worker(rebuild_command(*r));
  check(again && same_command(*again, *r), "a worker command parses differently once rebuilt");
}

void for_worker(const message& input) {
  auto r = mdp::parse_from_broker_for_worker(input.clone());
  if (!r) return;
  check(r->kind == mdp::command::request || r->kind == mdp::command::heartbeat ||
            r->kind == mdp::command::disconnect,
        "a worker accepted a command a broker does not send");
  if (r->kind == mdp::command::request && r->body.empty()) return;  // the builder refuses it
  auto again = mdp::parse_from_broker_for_worker(rebuild_command(*r));
  check(again && same_command(*again, *r), "a command to a worker parses differently once rebuilt");
}

// What a broker's ROUTER received: the routing id first. The in-place parser must agree with the
// copying parsers on what follows the routing id.
void router_input(const message& input, std::size_t max_return_frames) {
  const mdp::broker_input in = mdp::parse_broker_input(input, max_return_frames);
  check((in.error == mdp::fault::none) == (mdp::code_of(in.error).value() == 0), "code_of disagrees with the fault");
  check(!mdp::describe(in.error).empty(), "a fault without a description");
  if (!in) return;
  check(input.size() >= 1 && in.peer == input.view(0), "the peer is not frame 0");
  message tail;
  for (std::size_t i = 1; i < input.size(); ++i) tail.push_back(input.view(i));
  switch (in.what) {
    case mdp::broker_input::kind::client_request: {
      check(in.stack.size() <= max_return_frames, "a return stack over the bound");
      check(!in.body.empty() && in.body_at + in.body.size() == input.size(), "the body is not the tail");
      message after_stack;
      for (std::size_t i = 1 + in.stack.size(); i < input.size(); ++i) after_stack.push_back(input.view(i));
      auto r = mdp::parse_client(std::move(after_stack));
      check(r && r->service == in.service && r->body.size() == in.body.size(),
            "parse_broker_input and parse_client disagree");
      break;
    }
    default: {
      check(in.stack.empty(), "a worker command with a return stack");
      auto r = mdp::parse_worker(std::move(tail));
      check(r.has_value(), "parse_broker_input accepted what parse_worker refuses");
      check(r->service == in.service && r->client == in.client && r->credit == in.credit,
            "parse_broker_input and parse_worker disagree");
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  const std::uint8_t mode = in.byte();
  const message m = in.rest_message(300);
  switch (mode % 6) {
    case 0: client_request(m); break;
    case 1: reply_for_client(m, mdp::delimiter::included); break;
    case 2: reply_for_client(m, mdp::delimiter::stripped); break;
    case 3: from_worker(m); break;
    case 4: for_worker(m); break;
    default: router_input(m, mode / 6 % 65); break;
  }
  return 0;
}
