// Tests the 10/FLP grammar (src/reliability/flp.hpp) and the server machine (flp_server.hpp): every
// command and every way a message can break the grammar, at both ends, and what the server sends
// back for each, through a recording sink.
#include "reliability/flp.hpp"
#include "reliability/flp_server.hpp"

#include <fabric/error.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace fabric::flp {
namespace {

using frames = std::vector<std::string>;
using kind_s = at_server::kind;
using kind_c = at_client::kind;

message make(const frames& parts) { return testing::message_of(parts); }
frames frames_of(const message& m) { return testing::to_strings(m); }

const std::string seq7 = std::string(7, '\0') + "\x07";

// Records what a machine sends; the peer can be made unreachable or full.
class recording_sink : public detail::machine_sink {
 public:
  result<void> send(detail::port, message&& m) override {
    if (refuse) return *refuse;
    sent.push_back(frames_of(m));
    m.clear();
    return {};
  }
  std::vector<frames> sent;
  std::optional<errc> refuse;
};

// --- the grammar ---

TEST(FlpGrammarTest, PingIsOneFrameOfFourOctetsAtTheServer) {
  EXPECT_EQ(parse_at_server(make({"client", "PING"})).what, kind_s::ping);
  for (const frames& bad : {frames{"client", "PING "}, frames{"client", "ping"}, frames{"client", ""},
                            frames{"client", "PONG"}}) {
    const auto p = parse_at_server(make(bad));
    EXPECT_EQ(p.what, kind_s::malformed) << bad[1];
    EXPECT_EQ(p.why, fault::bad_command);
  }
}

TEST(FlpGrammarTest, TwoOrMoreFramesAreARequestWhateverTheControlFrameHolds) {
  EXPECT_EQ(parse_at_server(make({"client", "17", "body"})).what, kind_s::request);
  EXPECT_EQ(parse_at_server(make({"client", "PING", "body"})).what, kind_s::request);
  EXPECT_EQ(parse_at_server(make({"client", "", ""})).what, kind_s::request);
  EXPECT_EQ(parse_at_server(make({"client", "c", "a", "b", "c"})).what, kind_s::request);
}

TEST(FlpGrammarTest, ServerRefusesAMessageWithoutIdentityAndALongControlFrame) {
  EXPECT_EQ(parse_at_server(make({"client"})).why, fault::no_identity);
  EXPECT_EQ(parse_at_server(message()).why, fault::no_identity);
  EXPECT_EQ(parse_at_server(make({"client", std::string(255, 'c'), "b"})).what, kind_s::request);
  const auto p = parse_at_server(make({"client", std::string(256, 'c'), "b"}));
  EXPECT_EQ(p.what, kind_s::malformed);
  EXPECT_EQ(p.why, fault::control_too_large);
  EXPECT_EQ(parse_at_server(make({"client", std::string(256, 'c'), "b"}), 1000).what, kind_s::request);
}

TEST(FlpGrammarTest, ClientReadsPongAndRepliesWithItsSequenceNumber) {
  const message pong_msg = make({"tcp://a:1", "PONG"});
  const auto pong = parse_at_client(pong_msg);
  EXPECT_EQ(pong.what, kind_c::pong);
  EXPECT_EQ(pong.server, "tcp://a:1");
  const message reply_msg = make({"tcp://a:1", seq7, "r1", "r2"});
  const auto reply = parse_at_client(reply_msg);
  EXPECT_EQ(reply.what, kind_c::reply);
  EXPECT_EQ(reply.sequence, 7u);
  EXPECT_EQ(reply.server, "tcp://a:1");
}

TEST(FlpGrammarTest, ClientRefusesEveryOtherShape) {
  const std::vector<std::pair<frames, fault>> cases = {
      {{"tcp://a:1"}, fault::no_identity},
      {{"tcp://a:1", "PING"}, fault::bad_command},
      {{"tcp://a:1", "pong"}, fault::bad_command},
      {{"tcp://a:1", seq7}, fault::bad_command},            // a reply with no body frame
      {{"tcp://a:1", "17", "body"}, fault::bad_control},     // not fabric's control frame
      {{"tcp://a:1", seq7 + "x", "body"}, fault::bad_control},
      {{"", "PONG"}, fault::bad_identity},
      {{std::string(256, 'e'), "PONG"}, fault::bad_identity},
  };
  for (const auto& [parts, why] : cases) {
    const auto p = parse_at_client(make(parts));
    EXPECT_EQ(p.what, kind_c::malformed) << to_string(why);
    EXPECT_EQ(p.why, why) << to_string(p.why);
  }
}

TEST(FlpGrammarTest, SequenceNumbersAreEightOctetsBigEndian) {
  const frame f = encode_sequence(0x0102030405060708ULL);
  EXPECT_EQ(view(f), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(decode_sequence(f), 0x0102030405060708ULL);
  EXPECT_FALSE(decode_sequence(make_frame("1234567")));
  EXPECT_FALSE(decode_sequence(make_frame("123456789")));
}

TEST(FlpGrammarTest, BuildersWriteTheGrammar) {
  EXPECT_EQ(frames_of(ping_to("tcp://a:1")), (frames{"tcp://a:1", "PING"}));
  EXPECT_EQ(frames_of(pong_to(make_frame("client"))), (frames{"client", "PONG"}));
  message body = make({"x", "y"});
  EXPECT_EQ(frames_of(request_to("tcp://a:1", 7, body)), (frames{"tcp://a:1", seq7, "x", "y"}));
  EXPECT_EQ(frames_of(body), (frames{"x", "y"})) << "the body stays whole for another attempt";
}

// --- the server machine ---

class FlpServerTest : public ::testing::Test {
 protected:
  void make_machine(freelance::server::handler h = {}, std::size_t max_control = 255) {
    machine_ = std::make_unique<server_machine>(sink_, max_control, std::move(h));
  }
  server_machine& m() {
    if (!machine_) make_machine();
    return *machine_;
  }
  recording_sink sink_;
  std::unique_ptr<server_machine> machine_;
  detail::time_point now_{};
};

TEST_F(FlpServerTest, AnswersPingWithPongToTheSameClient) {
  freelance::request r;
  EXPECT_FALSE(m().accept(make({"client-1", "PING"}), r));
  ASSERT_EQ(sink_.sent.size(), 1u);
  EXPECT_EQ(sink_.sent[0], (frames{"client-1", "PONG"}));
  EXPECT_EQ(m().stats().pings, 1u);
}

TEST_F(FlpServerTest, HandsOutARequestAndRepliesWithItsControlFrameUnchanged) {
  freelance::request r;
  ASSERT_TRUE(m().accept(make({"client-1", "ccf-any-bytes", "a", "b"}), r));
  EXPECT_EQ(view(r.client), "client-1");
  EXPECT_EQ(view(r.control), "ccf-any-bytes");
  EXPECT_EQ(frames_of(r.body), (frames{"a", "b"}));
  message answer = make({"x", "y"});
  ASSERT_TRUE(m().reply(r, answer));
  EXPECT_TRUE(answer.empty());
  EXPECT_EQ(sink_.sent.at(0), (frames{"client-1", "ccf-any-bytes", "x", "y"}));
  EXPECT_EQ(m().stats().requests, 1u);
  EXPECT_EQ(m().stats().replies, 1u);
}

TEST_F(FlpServerTest, SendsAnEmptyReplyAsOneEmptyFrame) {
  freelance::request r;
  ASSERT_TRUE(m().accept(make({"c", "17", "a"}), r));
  message nothing;
  ASSERT_TRUE(m().reply(r, nothing));
  EXPECT_EQ(sink_.sent.at(0), (frames{"c", "17", ""}));
}

TEST_F(FlpServerTest, AFailedReplyLeavesRequestAndBodyAsTheyWereAndIsCounted) {
  freelance::request r;
  ASSERT_TRUE(m().accept(make({"c", "17", "a"}), r));
  message answer = make({"x", "y"});
  sink_.refuse = errc::peer_unreachable;
  EXPECT_TRUE(m().reply(r, answer).is(errc::peer_unreachable));
  EXPECT_EQ(view(r.client), "c");
  EXPECT_EQ(view(r.control), "17");
  EXPECT_EQ(frames_of(answer), (frames{"x", "y"}));
  sink_.refuse = errc::back_pressure;
  EXPECT_TRUE(m().reply(r, answer).is(errc::back_pressure));
  EXPECT_EQ(m().stats().unroutable, 1u);
  EXPECT_EQ(m().stats().back_pressure, 1u);
  sink_.refuse.reset();
  ASSERT_TRUE(m().reply(r, answer));
  EXPECT_EQ(sink_.sent.at(0), (frames{"c", "17", "x", "y"}));
}

TEST_F(FlpServerTest, CountsAndDropsMalformedInputWithoutAnswering) {
  freelance::request r;
  for (const frames& bad : {frames{"c"}, frames{"c", "PONG"}, frames{"c", "hello"}, frames{"c", std::string(300, 'x'), "b"}})
    EXPECT_FALSE(m().accept(make(bad), r));
  m().note_malformed();
  EXPECT_TRUE(sink_.sent.empty());
  EXPECT_EQ(m().stats().malformed, 5u);
  EXPECT_EQ(m().stats().requests, 0u);
}

TEST_F(FlpServerTest, CountsAPongThatCannotBeSent) {
  freelance::request r;
  sink_.refuse = errc::peer_unreachable;
  EXPECT_FALSE(m().accept(make({"c", "PING"}), r));
  sink_.refuse = errc::back_pressure;
  EXPECT_FALSE(m().accept(make({"c", "PING"}), r));
  EXPECT_EQ(m().stats().pings, 0u);
  EXPECT_EQ(m().stats().unroutable, 1u);
  EXPECT_EQ(m().stats().back_pressure, 1u);
}

TEST_F(FlpServerTest, HandlerAnswersEachRequestAndAThrowLeavesItUnanswered) {
  make_machine([](message&& body) {
    if (body.view(0) == "boom") throw std::runtime_error("boom");
    message out;
    out.push_back("re:" + std::string(body.view(0)));
    return out;
  });
  m().on_message(make({"c", "1", "hi"}), now_);
  m().on_message(make({"c", "2", "boom"}), now_);
  m().on_message(make({"c", "PING"}), now_);
  ASSERT_EQ(sink_.sent.size(), 2u);
  EXPECT_EQ(sink_.sent[0], (frames{"c", "1", "re:hi"}));
  EXPECT_EQ(sink_.sent[1], (frames{"c", "PONG"}));
  EXPECT_EQ(m().stats().handler_failures, 1u);
  EXPECT_EQ(m().stats().requests, 2u);
  EXPECT_EQ(m().stats().replies, 1u);
  EXPECT_EQ(m().next_tick(), detail::time_point::max());
}

TEST_F(FlpServerTest, RefusesAnUnreasonableControlBound) {
  testing::expect_error(errc::invalid_argument, [&] { server_machine s(sink_, 65537, {}); });
}

}  // namespace
}  // namespace fabric::flp
