// Tests the 7/MDP codec: exact wire layouts (for interop), round trips of every builder through
// its parser, a table of malformed sequences that must all fail cleanly, and zero-copy bodies.
#include "reliability/mdp.hpp"

#include <fabric/error.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::mdp {
namespace {

using namespace std::string_literals;
using frames = std::vector<std::string>;

message make(const frames& parts) {
  message m;
  for (const auto& p : parts) m.push_back(std::string_view(p));
  return m;
}

frames frames_of(const message& m) {
  frames out;
  for (const auto& f : m) out.emplace_back(view(f));
  return out;
}

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

class MdpRejects : public testing::TestWithParam<bad_case> {};

TEST_P(MdpRejects, MalformedOrMisdirectedInputWithTheRightCode) {
  const bad_case& c = GetParam();
  const std::error_code ec = run(c.which, make(c.input));
  EXPECT_EQ(ec, make_error_code(c.expected)) << c.name << ": got " << ec.message();
}

INSTANTIATE_TEST_SUITE_P(Table, MdpRejects, testing::ValuesIn(bad_cases),
                         [](const testing::TestParamInfo<bad_case>& param_info) {
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

}  // namespace
}  // namespace fabric::mdp
