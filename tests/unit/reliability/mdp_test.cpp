// Tests the 7/MDP codec: exact wire layouts (for interop), round trips of every builder through
// its parser, tables of malformed sequences that must all fail cleanly (each with its own fault
// for what a broker receives), the credit extension, and zero-copy bodies.
#include "reliability/mdp.hpp"

#include <fabric/error.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::mdp {
namespace {

using namespace std::string_literals;
using frames = std::vector<std::string>;

// Raw protocol input and output, frame by frame (tests/support/support.hpp).
message make(const frames& parts) { return testing::message_of(parts); }
frames frames_of(const message& m) { return testing::to_strings(m); }

// The body shapes every round trip runs over: every body 7/MDP allows (one frame or more, empty
// frames included). No body at all has tests of its own below.
std::vector<frames> bodies() {
  return {
      {"hello"},
      {""},
      {"a", "", "b\0c"s, std::string(1000, 'x'), ""},
  };
}

TEST(Mdp, BuildersProduceTheExactFramesOfTheRfc) {
  EXPECT_EQ(frames_of(client_request_msg("echo", make({"hi"}))),
            (frames{"", "MDPC01", "echo", "hi"}));
  EXPECT_EQ(frames_of(client_request_msg("echo", make({"hi"}), delimiter::stripped)),
            (frames{"MDPC01", "echo", "hi"}));
  EXPECT_EQ(frames_of(client_reply("echo", make({"hi", "there"}))),
            (frames{"", "MDPC01", "echo", "hi", "there"}));
  EXPECT_EQ(frames_of(worker_ready("echo")), (frames{"", "MDPW01", "\x01", "echo"}));
  EXPECT_EQ(frames_of(worker_request("cli", make({"hi"}))),
            (frames{"", "MDPW01", "\x02", "cli", "", "hi"}));
  EXPECT_EQ(frames_of(worker_reply("cli", make({"hi"}))),
            (frames{"", "MDPW01", "\x03", "cli", "", "hi"}));
  EXPECT_EQ(frames_of(worker_heartbeat()), (frames{"", "MDPW01", "\x04"}));
  EXPECT_EQ(frames_of(worker_disconnect()), (frames{"", "MDPW01", "\x05"}));
}

TEST(Mdp, ClientRequestRoundTripsForEveryBodyShape) {
  for (const auto& body : bodies()) {
    auto r = parse_client(client_request_msg("echo", make(body)));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->service, "echo");
    EXPECT_EQ(frames_of(r->body), body);
  }
}

TEST(Mdp, ClientReplyRoundTripsWithAndWithoutTheDelimiter) {
  for (const auto& body : bodies()) {
    auto r = parse_reply_for_client(client_reply("svc", make(body)));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->service, "svc");
    EXPECT_EQ(frames_of(r->body), body);

    // A REQ client's socket strips the delimiter before the codec sees the reply.
    message stripped = client_reply("svc", make(body));
    (void)stripped.pop_front();
    auto s = parse_reply_for_client(std::move(stripped), delimiter::stripped);
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_EQ(s->service, "svc");
    EXPECT_EQ(frames_of(s->body), body);
  }
}

TEST(Mdp, WorkerReadyRoundTripsToTheBroker) {
  auto r = parse_worker(worker_ready("echo"));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->kind, command::ready);
  EXPECT_EQ(r->service, "echo");
  EXPECT_TRUE(r->client.empty());
  EXPECT_TRUE(r->body.empty());
}

TEST(Mdp, WorkerRequestRoundTripsToTheWorkerForEveryBodyShape) {
  for (const auto& body : bodies()) {
    auto r = parse_from_broker_for_worker(worker_request("client-7", make(body)));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->kind, command::request);
    EXPECT_EQ(r->client, "client-7");
    EXPECT_EQ(frames_of(r->body), body);
  }
}

TEST(Mdp, WorkerReplyRoundTripsToTheBrokerForEveryBodyShape) {
  for (const auto& body : bodies()) {
    auto r = parse_worker(worker_reply("client-7", make(body)));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->kind, command::reply);
    EXPECT_EQ(r->client, "client-7");
    EXPECT_EQ(frames_of(r->body), body);
  }
}

TEST(Mdp, HeartbeatAndDisconnectRoundTripInBothDirections) {
  for (auto parse : {parse_worker, parse_from_broker_for_worker}) {
    auto h = parse(worker_heartbeat());
    ASSERT_TRUE(h);
    EXPECT_EQ(h->kind, command::heartbeat);
    auto d = parse(worker_disconnect());
    ASSERT_TRUE(d);
    EXPECT_EQ(d->kind, command::disconnect);
  }
}

TEST(Mdp, BinaryServiceAndClientFramesWithNulBytesSurvive) {
  const std::string service = "svc\0\xff\x01"s;
  const std::string client = "\0\x80\0\x01\x02"s;  // ROUTER's generated identities start with NUL

  auto c = parse_client(client_request_msg(service, make({"\0"s})));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->service, service);
  EXPECT_EQ(frames_of(c->body), (frames{"\0"s}));

  auto rd = parse_worker(worker_ready(service));
  ASSERT_TRUE(rd);
  EXPECT_EQ(rd->service, service);

  auto rq = parse_from_broker_for_worker(worker_request(client, make({"x"})));
  ASSERT_TRUE(rq);
  EXPECT_EQ(rq->client, client);

  auto rp = parse_worker(worker_reply(client, make({""})));
  ASSERT_TRUE(rp);
  EXPECT_EQ(rp->client, client);
  EXPECT_EQ(frames_of(rp->body), (frames{""}));
}

TEST(Mdp, NamesOfOneAndOfTwoHundredFiftyFiveBytesAreAccepted) {
  const std::string longest(max_name_size, 's');
  for (const std::string& name : {"s"s, longest}) {
    auto c = parse_client(client_request_msg(name, make({"x"})));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->service, name);
    auto r = parse_worker(worker_ready(name));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->service, name);
    auto q = parse_from_broker_for_worker(worker_request(name, make({"x"})));
    ASSERT_TRUE(q);
    EXPECT_EQ(q->client, name);
  }
}

TEST(Mdp, BuildersRejectEmptyAndOverlongNamesAsMisuse) {
  const std::string too_long(max_name_size + 1, 's');
  for (const std::string& bad : {""s, too_long}) {
    EXPECT_THROW((void)client_request_msg(bad, make({"x"})), fabric::error);
    EXPECT_THROW((void)client_reply(bad, make({"x"})), fabric::error);
    EXPECT_THROW((void)worker_ready(bad), fabric::error);
    EXPECT_THROW((void)worker_request(bad, make({"x"})), fabric::error);
    EXPECT_THROW((void)worker_reply(bad, make({"x"})), fabric::error);
  }
  try {
    (void)worker_ready("");
  } catch (const fabric::error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::invalid_argument));
  }
}

// 7/MDP has no REQUEST or REPLY without a body frame: fabric never builds one.
TEST(Mdp, BuildersRefuseAnEmptyBodyAsMisuse) {
  const auto expect_refused = [](auto build) {
    try {
      (void)build();
      ADD_FAILURE() << "an empty body was accepted";
    } catch (const fabric::error& e) {
      EXPECT_EQ(e.code(), make_error_code(errc::invalid_argument));
      EXPECT_NE(std::string(e.what()).find("body frame"), std::string::npos) << e.what();
    }
  };
  expect_refused([] { return client_request_msg("echo", message{}); });
  expect_refused([] { return client_request_msg("echo", message{}, delimiter::stripped); });
  expect_refused([] { return client_reply("echo", message{}); });
  expect_refused([] { return worker_request("cli", message{}); });
  expect_refused([] { return worker_reply("cli", message{}); });
}

// The broker's parsers drop what 7/MDP calls invalid; a client or worker takes an answer without
// a body from a less strict broker rather than turn it into a timeout.
TEST(Mdp, OnlyTheReceivingEndsAcceptAnEmptyBody) {
  auto reply = parse_reply_for_client(make({"", "MDPC01", "echo"}));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_TRUE(reply->body.empty());
  auto stripped = parse_reply_for_client(make({"MDPC01", "echo"}), delimiter::stripped);
  ASSERT_TRUE(stripped) << stripped.error().message();
  EXPECT_TRUE(stripped->body.empty());
  auto request = parse_from_broker_for_worker(make({"", "MDPW01", "\x02", "cli", ""}));
  ASSERT_TRUE(request) << request.error().message();
  EXPECT_EQ(request->kind, command::request);
  EXPECT_TRUE(request->body.empty());

  EXPECT_EQ(parse_client(make({"", "MDPC01", "echo"})).error(), make_error_code(errc::malformed));
  EXPECT_EQ(parse_worker(make({"", "MDPW01", "\x03", "cli", ""})).error(),
            make_error_code(errc::malformed));
}

TEST(Mdp, IsMmiMatchesOnlyTheMmiPrefix) {
  EXPECT_TRUE(is_mmi("mmi.service"));
  EXPECT_TRUE(is_mmi("mmi.anything"));
  EXPECT_TRUE(is_mmi("mmi."));
  EXPECT_FALSE(is_mmi("mmi"));
  EXPECT_FALSE(is_mmi("MMI.service"));
  EXPECT_FALSE(is_mmi("echo.mmi.service"));
  EXPECT_FALSE(is_mmi(""));
  EXPECT_TRUE(is_mmi(mmi_service));
}

// A frame above ZeroMQ's small-message size lives on the heap; its data pointer must not change
// through a builder or a parser, which proves the bytes were moved, not copied.
TEST(Mdp, BuildersAndParsersMoveBodyFramesWithoutCopying) {
  const std::string big(64 * 1024, 'b');

  message body = make({big, "tail"});
  const void* data = body[0].data();
  message wire = worker_request("cli", std::move(body));
  ASSERT_EQ(wire.size(), 7u);
  EXPECT_EQ(wire[5].data(), data);
  auto parsed = parse_from_broker_for_worker(std::move(wire));
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed->body.size(), 2u);
  EXPECT_EQ(parsed->body[0].data(), data);

  message reply = worker_reply("cli", std::move(parsed->body));
  EXPECT_EQ(reply[5].data(), data);
  auto at_broker = parse_worker(std::move(reply));
  ASSERT_TRUE(at_broker);
  EXPECT_EQ(at_broker->body[0].data(), data);

  message to_client = client_reply("svc", std::move(at_broker->body));
  EXPECT_EQ(to_client[3].data(), data);
  auto at_client = parse_reply_for_client(std::move(to_client));
  ASSERT_TRUE(at_client);
  EXPECT_EQ(at_client->body[0].data(), data);

  message request = client_request_msg("svc", std::move(at_client->body));
  EXPECT_EQ(request[3].data(), data);
  auto at_broker2 = parse_client(std::move(request));
  ASSERT_TRUE(at_broker2);
  EXPECT_EQ(at_broker2->body[0].data(), data);
  EXPECT_EQ(view(at_broker2->body[0]), big);
}

// ---------------------------------------------------------------------------------------------
// Malformed and misdirected input.

enum class parser { client, reply_for_client, reply_for_req_client, worker, for_worker };

struct bad_case {
  const char* name;
  parser which;
  frames input;
  errc expected;
};

std::error_code run(parser which, message&& m) {
  switch (which) {
    case parser::client:
      return parse_client(std::move(m)).error();
    case parser::reply_for_client:
      return parse_reply_for_client(std::move(m)).error();
    case parser::reply_for_req_client:
      return parse_reply_for_client(std::move(m), delimiter::stripped).error();
    case parser::worker:
      return parse_worker(std::move(m)).error();
    case parser::for_worker:
      return parse_from_broker_for_worker(std::move(m)).error();
  }
  return {};
}

const std::string long_name(max_name_size + 1, 'n');
const errc bad = errc::malformed;
const errc wrong = errc::protocol_error;

const bad_case bad_cases[] = {
    {"EmptyMessageToBroker", parser::client, {}, bad},
    {"OnlyDelimiterToBroker", parser::client, {""}, bad},
    {"ClientWithoutDelimiter", parser::client, {"MDPC01", "echo", "body"}, bad},
    {"ClientWithoutDelimiterOrBody", parser::client, {"MDPC01", "echo"}, bad},
    {"ClientNonEmptyDelimiter", parser::client, {"x", "MDPC01", "echo"}, bad},
    {"ClientWrongHeader", parser::client, {"", "MDPC02", "echo"}, bad},
    {"ClientSendsWorkerHeader", parser::client, {"", "MDPW01", "echo"}, bad},
    {"ClientHeaderWithTrailingNul", parser::client, {"", "MDPC01\0"s, "echo"}, bad},
    {"ClientHeaderLowercase", parser::client, {"", "mdpc01", "echo"}, bad},
    {"ClientMissingService", parser::client, {"", "MDPC01"}, bad},
    {"ClientEmptyService", parser::client, {"", "MDPC01", "", "body"}, bad},
    {"ClientServiceTooLong", parser::client, {"", "MDPC01", long_name}, bad},
    {"ClientRequestWithoutBody", parser::client, {"", "MDPC01", "echo"}, bad},
    {"EmptyMessageToWorker", parser::for_worker, {}, bad},
    {"WorkerWithoutDelimiter", parser::worker, {"MDPW01", "\x04"}, bad},
    {"WorkerNonEmptyDelimiter", parser::worker, {"x", "MDPW01", "\x04"}, bad},
    {"WorkerWrongHeader", parser::worker, {"", "MDPW02", "\x04"}, bad},
    {"WorkerSendsClientHeader", parser::worker, {"", "MDPC01", "\x04"}, bad},
    {"WorkerMissingCommand", parser::worker, {"", "MDPW01"}, bad},
    {"WorkerEmptyCommandFrame", parser::worker, {"", "MDPW01", ""}, bad},
    {"WorkerTwoByteCommand", parser::worker, {"", "MDPW01", "\x04\x00"s}, bad},
    {"WorkerCommandZero", parser::worker, {"", "MDPW01", "\0"s}, bad},
    {"WorkerCommandSix", parser::worker, {"", "MDPW01", "\x06"}, bad},
    {"WorkerCommandHighBit", parser::worker, {"", "MDPW01", "\x84"}, bad},
    {"WorkerCommandAsAsciiDigit", parser::worker, {"", "MDPW01", "4"}, bad},
    {"ReadyWithoutService", parser::worker, {"", "MDPW01", "\x01"}, bad},
    {"ReadyWithEmptyService", parser::worker, {"", "MDPW01", "\x01", ""}, bad},
    {"ReadyWithExtraFrame", parser::worker, {"", "MDPW01", "\x01", "echo", "x"}, bad},
    {"ReadyWithExtraEmptyFrame", parser::worker, {"", "MDPW01", "\x01", "echo", ""}, bad},
    {"ReadyServiceTooLong", parser::worker, {"", "MDPW01", "\x01", long_name}, bad},
    {"ReplyWithoutClient", parser::worker, {"", "MDPW01", "\x03"}, bad},
    {"ReplyWithoutDelimiterAfterClient", parser::worker, {"", "MDPW01", "\x03", "cli"}, bad},
    {"ReplyNonEmptyFrameAfterClient", parser::worker, {"", "MDPW01", "\x03", "cli", "body"}, bad},
    {"ReplyEmptyClient", parser::worker, {"", "MDPW01", "\x03", "", ""}, bad},
    {"ReplyTwoClientFrames", parser::worker, {"", "MDPW01", "\x03", "c1", "c2", "", "b"}, bad},
    {"ReplyClientTooLong", parser::worker, {"", "MDPW01", "\x03", long_name, ""}, bad},
    {"ReplyWithoutBody", parser::worker, {"", "MDPW01", "\x03", "cli", ""}, bad},
    {"WorkerSendsRequestWithoutBody", parser::worker, {"", "MDPW01", "\x02", "cli", ""}, bad},
    {"HeartbeatWithExtraFrame", parser::worker, {"", "MDPW01", "\x04", "x"}, bad},
    {"HeartbeatWithExtraEmptyFrame", parser::worker, {"", "MDPW01", "\x04", ""}, bad},
    {"DisconnectWithExtraFrame", parser::worker, {"", "MDPW01", "\x05", "x"}, bad},
    {"WorkerSendsRequest", parser::worker, {"", "MDPW01", "\x02", "cli", "", "b"}, wrong},
    {"BrokerSendsReadyToWorker", parser::for_worker, {"", "MDPW01", "\x01", "echo"}, wrong},
    {"BrokerSendsReplyToWorker", parser::for_worker, {"", "MDPW01", "\x03", "cli", ""}, wrong},
    {"RequestToWorkerWithoutDelimiter", parser::for_worker, {"", "MDPW01", "\x02", "cli"}, bad},
    {"RequestToWorkerTwoClients", parser::for_worker, {"", "MDPW01", "\x02", "a", "b", ""}, bad},
    {"HeartbeatToWorkerWithExtraFrame", parser::for_worker, {"", "MDPW01", "\x04", ""}, bad},
    {"ReplyToClientWrongHeader", parser::reply_for_client, {"", "MDPW01", "echo"}, bad},
    {"ReplyToClientEmptyService", parser::reply_for_client, {"", "MDPC01", ""}, bad},
    {"ReplyToClientMissingDelimiter", parser::reply_for_client, {"MDPC01", "echo", "b"}, bad},
    {"ReplyToReqClientStillDelimited", parser::reply_for_req_client, {"", "MDPC01", "e"}, bad},
    {"ReplyToReqClientMissingService", parser::reply_for_req_client, {"MDPC01"}, bad},
    {"EmptyReplyToReqClient", parser::reply_for_req_client, {}, bad},
};

class MdpRejects : public ::testing::TestWithParam<bad_case> {};

TEST_P(MdpRejects, MalformedOrMisdirectedInputWithTheRightCode) {
  const bad_case& c = GetParam();
  const std::error_code ec = run(c.which, make(c.input));
  EXPECT_EQ(ec, make_error_code(c.expected)) << c.name << ": got " << ec.message();
}

INSTANTIATE_TEST_SUITE_P(Table, MdpRejects, ::testing::ValuesIn(bad_cases),
                         [](const ::testing::TestParamInfo<bad_case>& param_info) {
                           return std::string(param_info.param.name);
                         });

// Every prefix of every valid message and random frame soup must come back as a value or an
// error, never a crash; run under ASan/UBSan this is the codec's memory-safety check.
TEST(Mdp, TruncationsAndRandomFramesNeverCrash) {
  std::vector<frames> valid = {
      frames_of(client_request_msg("echo", make({"a", ""}))),
      frames_of(worker_ready("echo")),
      frames_of(worker_request("cli", make({"a"}))),
      frames_of(worker_reply("cli", make({""}))),
      frames_of(worker_heartbeat()),
  };
  const parser all[] = {parser::client, parser::reply_for_client, parser::reply_for_req_client,
                        parser::worker, parser::for_worker};
  for (const auto& v : valid) {
    for (std::size_t n = 0; n <= v.size(); ++n) {
      const frames prefix(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n));
      for (parser p : all) (void)run(p, make(prefix));
    }
  }

  std::mt19937 rng(7);
  const std::vector<std::string> atoms = {"", "MDPC01", "MDPW01", "\x01", "\x02", "\x03",
                                          "\x04", "\x05", "\0"s,  "cli", long_name};
  std::uniform_int_distribution<std::size_t> pick(0, atoms.size() - 1);
  std::uniform_int_distribution<std::size_t> length(0, 8);
  for (int i = 0; i < 5000; ++i) {
    frames f(length(rng));
    for (auto& s : f) s = atoms[pick(rng)];
    for (parser p : all) (void)run(p, make(f));
  }
  SUCCEED();
}

// ---------------------------------------------------------------------------------------------
// What a broker's ROUTER receives: parse_broker_input (routing id first, views, no copies).

constexpr std::size_t stack_bound = 8;

// Only the error may be read when `m` is a temporary: the views die with it.
broker_input parse_in(const message& m) { return parse_broker_input(m, stack_bound); }

std::vector<std::string> strings_of(std::span<const frame> s) {
  std::vector<std::string> out;
  for (const frame& f : s) out.emplace_back(view(f));
  return out;
}

TEST(MdpBrokerInput, ClientRequestIsParsedIntoViewsOfItsFrames) {
  const message m = make({"cid", "", "MDPC01", "echo", "a", ""});
  const broker_input in = parse_in(m);
  ASSERT_TRUE(in) << describe(in.error);
  EXPECT_EQ(in.what, broker_input::kind::client_request);
  EXPECT_EQ(in.peer, "cid");
  EXPECT_TRUE(in.stack.empty());
  EXPECT_EQ(in.service, "echo");
  EXPECT_EQ(in.body_at, 4U);
  EXPECT_EQ(strings_of(in.body), (frames{"a", ""}));
  // Views, not copies: every one points into the message's own frames.
  EXPECT_EQ(in.peer.data(), m[0].data());
  EXPECT_EQ(in.service.data(), m[3].data());
  EXPECT_EQ(in.body.data(), &m[4]);
}

TEST(MdpBrokerInput, ClientReturnStackIsEveryFrameBeforeTheDelimiter) {
  const message m = make({"cid", "corr-7", "hop-2", "", "MDPC01", "echo", "body"});
  const broker_input in = parse_in(m);
  ASSERT_TRUE(in) << describe(in.error);
  EXPECT_EQ(strings_of(in.stack), (frames{"corr-7", "hop-2"}));
  EXPECT_EQ(in.stack.data(), &m[1]);
  EXPECT_EQ(in.service, "echo");
  EXPECT_EQ(in.body_at, 6U);
  EXPECT_EQ(strings_of(in.body), (frames{"body"}));
}

TEST(MdpBrokerInput, ReturnStackUpToTheBoundIsAcceptedAndOneMoreIsNot) {
  frames f{"cid"};
  for (std::size_t i = 0; i < stack_bound; ++i) f.push_back("s" + std::to_string(i));
  f.insert(f.end(), {"", "MDPC01", "echo", "b"});
  const message at_bound = make(f);
  const broker_input ok = parse_in(at_bound);
  ASSERT_TRUE(ok) << describe(ok.error);
  EXPECT_EQ(ok.stack.size(), stack_bound);
  f.insert(f.begin() + 1, "one-more");
  EXPECT_EQ(parse_in(make(f)).error, fault::return_stack_too_long);
  // No bound to speak of: the scan still stops at the end of the message.
  const message plain = make({"cid", "s", "", "MDPC01", "echo", "b"});
  EXPECT_TRUE(parse_broker_input(plain, std::numeric_limits<std::size_t>::max()));
  EXPECT_EQ(parse_broker_input(plain, 0).error, fault::return_stack_too_long);
}

TEST(MdpBrokerInput, EveryWorkerCommandIsParsed) {
  const message ready = make({"wid", "", "MDPW01", "\x01", "echo"});
  const broker_input r = parse_in(ready);
  ASSERT_TRUE(r) << describe(r.error);
  EXPECT_EQ(r.what, broker_input::kind::ready);
  EXPECT_EQ(r.peer, "wid");
  EXPECT_EQ(r.service, "echo");
  EXPECT_EQ(r.credit, 1U);

  const message reply = make({"wid", "", "MDPW01", "\x03", "cli", "", "x", ""});
  const broker_input p = parse_in(reply);
  ASSERT_TRUE(p) << describe(p.error);
  EXPECT_EQ(p.what, broker_input::kind::reply);
  EXPECT_EQ(p.client, "cli");
  EXPECT_EQ(p.client.data(), reply[4].data());
  EXPECT_EQ(p.body_at, 6U);
  EXPECT_EQ(strings_of(p.body), (frames{"x", ""}));
  EXPECT_EQ(p.body.data(), &reply[6]);

  const message heartbeat = make({"wid", "", "MDPW01", "\x04"});
  const broker_input h = parse_in(heartbeat);
  ASSERT_TRUE(h);
  EXPECT_EQ(h.what, broker_input::kind::heartbeat);
  EXPECT_EQ(h.peer, "wid");

  const message disconnect = make({"wid", "", "MDPW01", "\x05"});
  const broker_input d = parse_in(disconnect);
  ASSERT_TRUE(d);
  EXPECT_EQ(d.what, broker_input::kind::disconnect);
}

TEST(MdpBrokerInput, WorkerRequestIsWellFormedButInTheWrongDirection) {
  const message m = make({"wid", "", "MDPW01", "\x02", "cli", "", "x"});
  const broker_input in = parse_in(m);
  EXPECT_EQ(in.error, fault::wrong_direction);
  EXPECT_EQ(in.peer, "wid") << "the broker needs the sender to answer with DISCONNECT";
  EXPECT_EQ(code_of(in.error), make_error_code(errc::protocol_error));
}

TEST(MdpBrokerInput, ReadyCarriesTheCreditExtension) {
  const auto credit_of = [](const std::string& text) {
    const message m = make({"wid", "", "MDPW01", "\x01", "echo", text});
    const broker_input in = parse_in(m);
    EXPECT_TRUE(in) << text << ": " << describe(in.error);
    EXPECT_EQ(in.service, "echo");
    return in.credit;
  };
  EXPECT_EQ(credit_of("1"), 1U);
  EXPECT_EQ(credit_of("5"), 5U);
  EXPECT_EQ(credit_of("00005"), 5U);
  EXPECT_EQ(credit_of("4294967295"), 4294967295U);
  // Twenty digits is the most the grammar takes; a larger value reads as the largest credit.
  EXPECT_EQ(credit_of("4294967296"), 4294967295U);
  EXPECT_EQ(credit_of("99999999999999999999"), 4294967295U);
  for (const char* text : {"0", "", "00", "1x", "-1", " 5", "+5", "5 ", "123456789012345678901"}) {
    EXPECT_EQ(parse_in(make({"wid", "", "MDPW01", "\x01", "echo", text})).error, fault::bad_credit)
        << "'" << text << "'";
  }
  EXPECT_EQ(parse_in(make({"wid", "", "MDPW01", "\x01", "echo", "2", "x"})).error,
            fault::extra_frames);
}

TEST(MdpBrokerInput, ReadyWithCreditRoundTripsThroughEveryBrokerParser) {
  EXPECT_EQ(frames_of(worker_ready("echo", 1)), (frames{"", "MDPW01", "\x01", "echo"}));
  EXPECT_EQ(frames_of(worker_ready("echo", 16)), (frames{"", "MDPW01", "\x01", "echo", "16"}));
  EXPECT_EQ(frames_of(worker_ready("echo", 4294967295U)),
            (frames{"", "MDPW01", "\x01", "echo", "4294967295"}));
  EXPECT_THROW((void)worker_ready("echo", 0), fabric::error);
  EXPECT_THROW((void)worker_ready("", 2), fabric::error);

  message routed = worker_ready("echo", 16);
  routed.push_front(std::string_view("wid"));
  const broker_input in = parse_in(routed);
  ASSERT_TRUE(in) << describe(in.error);
  EXPECT_EQ(in.credit, 16U);

  auto w = parse_worker(worker_ready("echo", 16));
  ASSERT_TRUE(w) << w.error().message();
  EXPECT_EQ(w->kind, command::ready);
  EXPECT_EQ(w->service, "echo");
  EXPECT_EQ(w->credit, 16U);
  auto plain = parse_worker(worker_ready("echo"));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->credit, 1U);
}

TEST(MdpBrokerInput, BuildersForTheBrokerProduceRoutedFrames) {
  EXPECT_EQ(frames_of(worker_heartbeat_to("wid")), (frames{"wid", "", "MDPW01", "\x04"}));
  EXPECT_EQ(frames_of(worker_disconnect_to("wid")), (frames{"wid", "", "MDPW01", "\x05"}));

  // The request's body frames are shared, not copied, and the request keeps them.
  const std::string big(64 * 1024, 'b');
  message request = make({"cid", "", "MDPC01", "echo", big, ""});
  message out = make({"left", "over"});
  write_worker_request(out, "wid", "cid", std::span<frame>(request.frames()).subspan(4));
  EXPECT_EQ(frames_of(out), (frames{"wid", "", "MDPW01", "\x02", "cid", "", big, ""}));
  EXPECT_EQ(out[6].data(), request[4].data());
  EXPECT_EQ(request.view(4), big);
  const broker_input parsed_back = parse_in(request);
  EXPECT_TRUE(parsed_back) << "the request stays whole";

  // What the broker sends a worker is what the worker's parser takes.
  (void)out.pop_front();
  auto at_worker = parse_from_broker_for_worker(std::move(out));
  ASSERT_TRUE(at_worker) << at_worker.error().message();
  EXPECT_EQ(at_worker->client, "cid");
  EXPECT_EQ(frames_of(at_worker->body), (frames{big, ""}));
}

TEST(MdpBrokerInput, WhatClientsAndWorkersBuildIsAcceptedWithARoutingId) {
  std::vector<message> built;
  built.push_back(client_request_msg("echo", make({"x"})));
  built.push_back(worker_ready("echo"));
  built.push_back(worker_ready("echo", 3));
  built.push_back(worker_reply("cli", make({""})));
  built.push_back(worker_heartbeat());
  built.push_back(worker_disconnect());
  for (message& m : built) {
    m.push_front(std::string_view("id"));
    const broker_input in = parse_in(m);
    EXPECT_TRUE(in) << describe(in.error);
  }
}

TEST(MdpBrokerInput, EveryFaultMapsToItsErrorCodeAndHasADescription) {
  EXPECT_FALSE(code_of(fault::none));
  for (int i = static_cast<int>(fault::no_delimiter); i <= static_cast<int>(fault::wrong_direction);
       ++i) {
    const auto f = static_cast<fault>(i);
    EXPECT_EQ(code_of(f), make_error_code(f == fault::wrong_direction ? errc::protocol_error
                                                                       : errc::malformed));
    EXPECT_FALSE(describe(f).empty());
    EXPECT_NE(describe(f), "unknown fault");
  }
}

struct bad_input {
  const char* name;
  frames input;
  fault expected;
};

const bad_input bad_inputs[] = {
    {"NoFrames", {}, fault::no_delimiter},
    {"OnlyTheRoutingId", {"p"}, fault::no_delimiter},
    {"NoDelimiter", {"p", "x"}, fault::no_delimiter},
    {"NoDelimiterAfterAStack", {"p", "x", "y"}, fault::no_delimiter},
    {"OnlyTheDelimiter", {"p", ""}, fault::no_header},
    {"StackThenDelimiterOnly", {"p", "s", ""}, fault::no_header},
    {"StackLongerThanTheBound",
     {"p", "1", "2", "3", "4", "5", "6", "7", "8", "9", "", "MDPC01", "echo", "b"},
     fault::return_stack_too_long},
    {"DraftClientHeader", {"p", "", "MDPC02", "echo"}, fault::unknown_header},
    {"ShortClientHeader", {"p", "", "MDPC0", "echo"}, fault::unknown_header},
    {"LowercaseClientHeader", {"p", "", "mdpc01", "echo"}, fault::unknown_header},
    {"ClientHeaderWithTrailingNul", {"p", "", "MDPC01\0"s, "echo", "b"}, fault::unknown_header},
    {"TwoDelimiters", {"p", "", "", "MDPC01", "echo"}, fault::unknown_header},
    {"ClientMissingService", {"p", "", "MDPC01"}, fault::bad_service},
    {"ClientEmptyService", {"p", "", "MDPC01", "", "b"}, fault::bad_service},
    {"ClientServiceTooLong", {"p", "", "MDPC01", long_name, "b"}, fault::bad_service},
    {"ClientRequestWithoutBody", {"p", "", "MDPC01", "echo"}, fault::no_body},
    {"ClientWithStackWithoutBody", {"p", "corr", "", "MDPC01", "echo"}, fault::no_body},
    {"WorkerWithAReturnStack", {"p", "stack", "", "MDPW01", "\x04"}, fault::worker_return_stack},
    {"WorkerMissingCommand", {"p", "", "MDPW01"}, fault::bad_command},
    {"WorkerEmptyCommandFrame", {"p", "", "MDPW01", ""}, fault::bad_command},
    {"WorkerTwoByteCommand", {"p", "", "MDPW01", "\x01\x01"}, fault::bad_command},
    {"WorkerCommandZero", {"p", "", "MDPW01", "\0"s}, fault::bad_command},
    {"WorkerCommandSix", {"p", "", "MDPW01", "\x06"}, fault::bad_command},
    {"WorkerCommandHighBit", {"p", "", "MDPW01", "\xff"}, fault::bad_command},
    {"ReadyWithoutService", {"p", "", "MDPW01", "\x01"}, fault::bad_service},
    {"ReadyEmptyService", {"p", "", "MDPW01", "\x01", ""}, fault::bad_service},
    {"ReadyServiceTooLong", {"p", "", "MDPW01", "\x01", long_name}, fault::bad_service},
    {"ReadyWithAWordForCredit", {"p", "", "MDPW01", "\x01", "echo", "extra"}, fault::bad_credit},
    {"ReadyWithAnEmptyCredit", {"p", "", "MDPW01", "\x01", "echo", ""}, fault::bad_credit},
    {"ReadyWithZeroCredit", {"p", "", "MDPW01", "\x01", "echo", "0"}, fault::bad_credit},
    {"ReadyAfterItsCredit", {"p", "", "MDPW01", "\x01", "echo", "2", "x"}, fault::extra_frames},
    {"ReplyWithoutClient", {"p", "", "MDPW01", "\x03"}, fault::bad_address},
    {"ReplyEmptyClient", {"p", "", "MDPW01", "\x03", "", ""}, fault::bad_address},
    {"ReplyClientTooLong", {"p", "", "MDPW01", "\x03", long_name, ""}, fault::bad_address},
    {"ReplyWithoutDelimiter", {"p", "", "MDPW01", "\x03", "c1"}, fault::no_address_delimiter},
    {"ReplyNonEmptyDelimiter", {"p", "", "MDPW01", "\x03", "c1", "x"}, fault::no_address_delimiter},
    {"ReplyTwoClientFrames", {"p", "", "MDPW01", "\x03", "c1", "c2", "", "b"},
     fault::no_address_delimiter},
    {"ReplyWithoutBody", {"p", "", "MDPW01", "\x03", "c1", ""}, fault::no_body},
    {"WorkerRequestWithoutBody", {"p", "", "MDPW01", "\x02", "c1", ""}, fault::no_body},
    {"WorkerRequestWithoutDelimiter", {"p", "", "MDPW01", "\x02", "c1"},
     fault::no_address_delimiter},
    {"HeartbeatWithExtraFrame", {"p", "", "MDPW01", "\x04", "x"}, fault::extra_frames},
    {"HeartbeatWithExtraEmptyFrame", {"p", "", "MDPW01", "\x04", ""}, fault::extra_frames},
    {"DisconnectWithExtraFrame", {"p", "", "MDPW01", "\x05", "x"}, fault::extra_frames},
    {"WorkerRequest", {"p", "", "MDPW01", "\x02", "c1", "", "b"}, fault::wrong_direction},
};

class MdpBrokerInputRejects : public ::testing::TestWithParam<bad_input> {};

TEST_P(MdpBrokerInputRejects, EachMalformedInputWithItsOwnFault) {
  const bad_input& c = GetParam();
  const message m = make(c.input);
  const broker_input in = parse_in(m);
  EXPECT_EQ(in.error, c.expected) << c.name << ": got '" << describe(in.error) << "', expected '"
                                  << describe(c.expected) << "'";
  EXPECT_FALSE(in);
  if (!c.input.empty()) {
    EXPECT_EQ(in.peer, c.input[0]);
  }
}

INSTANTIATE_TEST_SUITE_P(Table, MdpBrokerInputRejects, ::testing::ValuesIn(bad_inputs),
                         [](const ::testing::TestParamInfo<bad_input>& param_info) {
                           return std::string(param_info.param.name);
                         });

// Every prefix of every valid input and random frame soup gives a fault or a parse whose views
// lie inside the message; run under ASan/UBSan this is the broker parser's memory-safety check.
TEST(MdpBrokerInput, TruncationsAndRandomFramesNeverCrash) {
  const std::vector<frames> valid = {
      {"p", "s", "", "MDPC01", "echo", "a", ""},
      {"p", "", "MDPW01", "\x01", "echo", "12"},
      {"p", "", "MDPW01", "\x03", "cli", "", "a"},
      {"p", "", "MDPW01", "\x04"},
  };
  const auto check = [](const frames& f) {
    const message m = make(f);
    for (std::size_t bound : {std::size_t{0}, std::size_t{2}, stack_bound}) {
      const broker_input in = parse_broker_input(m, bound);
      if (!in) continue;
      EXPECT_LE(in.body_at, m.size());
      EXPECT_LE(in.stack.size() + in.body.size(), m.size());
      if (in.what == broker_input::kind::client_request ||
          in.what == broker_input::kind::reply) {
        EXPECT_FALSE(in.body.empty());
      }
    }
  };
  for (const auto& v : valid)
    for (std::size_t n = 0; n <= v.size(); ++n)
      check(frames(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)));
  std::mt19937 rng(11);
  const std::vector<std::string> atoms = {"", "MDPC01", "MDPW01", "\x01", "\x02", "\x03", "\x04",
                                          "\x05", "\0"s, "7", "cli", long_name};
  std::uniform_int_distribution<std::size_t> pick(0, atoms.size() - 1);
  std::uniform_int_distribution<std::size_t> length(0, 9);
  for (int i = 0; i < 5000; ++i) {
    frames f(length(rng));
    for (auto& s : f) s = atoms[pick(rng)];
    check(f);
  }
}

}  // namespace
}  // namespace fabric::mdp
