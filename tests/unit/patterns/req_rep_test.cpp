// Tests request/reply (requester, replier) over inproc, ipc and tcp.
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::errc;
using fabric::message;
using fabric::make_message;
using fabric::replier;
using fabric::requester;
using fabric::testing::to_strings;
using fabric::testing::transport;
using fabric::testing::wait_bound;
using strings = std::vector<std::string>;

// Serves a replier on its own thread until destroyed: every request is answered with what
// `handle` makes of it (by default the tag followed by the request's frames). The socket is
// handed over at construction and used by that thread only.
class reply_thread {
 public:
  using handler = std::function<message(message&&)>;

  reply_thread(replier&& rep, std::string tag)
      : reply_thread(std::move(rep), [t = std::move(tag)](message&& m) {
          m.push_front(t);
          return std::move(m);
        }) {}
  reply_thread(replier&& rep, handler handle)
      : rep_(std::move(rep)), handle_(std::move(handle)), thread_([this] { run(); }) {}
  ~reply_thread() { stop(); }
  reply_thread(const reply_thread&) = delete;
  reply_thread& operator=(const reply_thread&) = delete;

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int served() const { return served_.load(); }

 private:
  void run() {
    message m;
    while (!stop_) {
      auto got = rep_.recv(m, 20ms);
      if (got.is(errc::timeout)) continue;
      if (!got) {
        ADD_FAILURE() << "replier recv: " << got.error().message();
        return;
      }
      if (auto sent = rep_.send(handle_(std::move(m)), wait_bound); !sent) {
        ADD_FAILURE() << "replier send: " << sent.error().message();
        return;
      }
      ++served_;
    }
  }

  replier rep_;
  handler handle_;
  std::atomic<bool> stop_{false};
  std::atomic<int> served_{0};
  std::thread thread_;  // last: starts once everything it uses is constructed
};

// An endpoint of `t` that nobody is bound to.
std::string unbound_endpoint(fabric::context& ctx, transport t) {
  if (t != transport::tcp) return fabric::testing::loopback_endpoint(t, "unbound");
  // A port the OS just handed out and that is free again. Should anything reach it before the
  // listener is gone, it is a PULL socket, which a REQ cannot talk to.
  fabric::any_socket placeholder(ctx, zmq::socket_type::pull, {.linger = 0ms});
  return placeholder.bind("tcp://127.0.0.1:*");
}

class ReqRepTest : public ::testing::TestWithParam<transport> {
 protected:
  fabric::context ctx;
};

TEST_P(ReqRepTest, RoundTripsMultiFrameBodies) {
  requester req(ctx, {.linger = 0ms});
  replier rep(ctx, {.linger = 0ms});
  fabric::testing::marry(rep, req, GetParam());

  const std::string binary("\0\xff\x01z", 4);
  const std::string large(100'000, 'x');
  message request = make_message("header", "", binary, large);
  ASSERT_TRUE(req.send(std::move(request), wait_bound));
  EXPECT_TRUE(request.empty());  // a sent message is consumed

  auto got = rep.recv(wait_bound);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(to_strings(*got), (strings{"header", "", binary, large}));

  ASSERT_TRUE(rep.send(make_message("status", "", "done"), wait_bound));
  auto reply = req.recv(wait_bound);
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"status", "", "done"}));
}

TEST_P(ReqRepTest, ServesManySequentialRequests) {
  requester req(ctx, {.linger = 0ms});
  replier rep(ctx, {.linger = 0ms});
  fabric::testing::marry(rep, req, GetParam());
  reply_thread server(std::move(rep), "ack");

  constexpr int count = 500;
  for (int i = 0; i < count; ++i) {
    const std::string body = "request-" + std::to_string(i);
    auto reply = req.request(make_message(body), wait_bound);
    ASSERT_TRUE(reply) << "request " << i << ": " << reply.error().message();
    ASSERT_EQ(to_strings(*reply), (strings{"ack", body}));
  }
  server.stop();
  EXPECT_EQ(server.served(), count);
}

TEST_P(ReqRepTest, RequestTimesOutWithNoReplier) {
  requester req(ctx, {.linger = 0ms});
  req.connect(unbound_endpoint(ctx, GetParam()));

  const auto timeout = 100ms;
  const auto start = std::chrono::steady_clock::now();
  auto reply = req.request(make_message("anyone?"), timeout);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(reply.is(errc::timeout)) << reply.error().message();
  EXPECT_GE(elapsed, timeout - 10ms);  // libzmq's clock has coarse granularity
  EXPECT_LT(elapsed, wait_bound);
}

TEST_P(ReqRepTest, RequestTimesOutWhenReplierIsSilent) {
  requester req(ctx, {.linger = 0ms});
  replier rep(ctx, {.linger = 0ms});
  fabric::testing::marry(rep, req, GetParam());

  auto reply = req.request(make_message("hello?"), 100ms);
  EXPECT_TRUE(reply.is(errc::timeout)) << reply.error().message();
  // The request did arrive; it was only never answered.
  auto got = rep.recv(wait_bound);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(to_strings(*got), (strings{"hello?"}));
}

TEST_P(ReqRepTest, RoundRobinsOverTwoRepliers) {
  requester req(ctx, {.linger = 0ms});
  replier first(ctx, {.linger = 0ms});
  replier second(ctx, {.linger = 0ms});
  fabric::testing::marry(first, req, GetParam());
  const std::string second_endpoint = second.bind(fabric::testing::loopback_endpoint(GetParam()));
  fabric::testing::connect_and_wait(req, second_endpoint);
  reply_thread a(std::move(first), "a");
  reply_thread b(std::move(second), "b");

  constexpr int count = 10;
  std::string previous;
  int from_a = 0;
  for (int i = 0; i < count; ++i) {
    auto reply = req.request(make_message(std::to_string(i)), wait_bound);
    ASSERT_TRUE(reply) << reply.error().message();
    ASSERT_EQ(reply->size(), 2u);
    const std::string tag(reply->view(0));
    EXPECT_NE(tag, previous) << "request " << i << " went to the same replier twice in a row";
    if (tag == "a") ++from_a;
    previous = tag;
  }
  a.stop();
  b.stop();
  EXPECT_EQ(from_a, count / 2);
  EXPECT_EQ(a.served(), count / 2);
  EXPECT_EQ(b.served(), count / 2);
}

TEST_P(ReqRepTest, StrictRequesterRefusesNewRequestAfterTimeout) {
  requester req(ctx, {.linger = 0ms});
  replier rep(ctx, {.linger = 0ms});
  fabric::testing::marry(rep, req, GetParam());

  EXPECT_TRUE(req.request(make_message("first"), 50ms).is(errc::timeout));
  EXPECT_THROW((void)req.request(make_message("second"), 50ms), fabric::error);
}

TEST_P(ReqRepTest, RelaxedRequesterSendsNewRequestAfterTimeout) {
  // Correlation makes the requester discard the late reply to the abandoned request.
  requester req(ctx, {.linger = 0ms, .req_relaxed = true, .req_correlate = true});
  replier rep(ctx, {.linger = 0ms});
  fabric::testing::marry(rep, req, GetParam());

  auto lost = req.request(make_message("first"), 50ms);
  ASSERT_TRUE(lost.is(errc::timeout)) << lost.error().message();
  ASSERT_TRUE(req.send(make_message("second"), wait_bound));

  auto first = rep.recv(wait_bound);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(to_strings(*first), (strings{"first"}));
  ASSERT_TRUE(rep.send(make_message("late reply to first"), wait_bound));
  auto second = rep.recv(wait_bound);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(to_strings(*second), (strings{"second"}));
  ASSERT_TRUE(rep.send(make_message("reply to second"), wait_bound));

  auto reply = req.recv(wait_bound);
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"reply to second"}));  // the late reply was discarded
}

struct quote_request {
  std::string symbol;
  std::int64_t quantity = 0;
  std::vector<std::string> venues;
  MSGPACK_DEFINE(symbol, quantity, venues)
};

struct quote {
  std::string symbol;
  double price = 0;
  std::uint64_t venue_count = 0;
  MSGPACK_DEFINE(symbol, price, venue_count)
};

TEST_P(ReqRepTest, CarriesTypedPayloads) {
  requester req(ctx, {.linger = 0ms});
  replier rep(ctx, {.linger = 0ms});
  fabric::testing::marry(rep, req, GetParam());
  reply_thread server(std::move(rep), [](message&& m) {
    auto asked = m.size() == 1 ? fabric::unpack<quote_request>(m[0])
                               : fabric::result<quote_request>(errc::malformed);
    if (!asked) {
      ADD_FAILURE() << "replier could not decode the request: " << asked.error().message();
      return make_message("undecodable");
    }
    message reply;
    reply.push_back(fabric::pack(quote{asked->symbol, 2.5 * static_cast<double>(asked->quantity),
                                       asked->venues.size()}));
    return reply;
  });

  message request;
  request.push_back(fabric::pack(quote_request{"FAB", -40, {"xlon", "xnys", "xtks"}}));
  auto reply = req.request(std::move(request), wait_bound);
  ASSERT_TRUE(reply) << reply.error().message();
  ASSERT_EQ(reply->size(), 1u);
  auto answer = fabric::unpack<quote>((*reply)[0]);
  ASSERT_TRUE(answer) << answer.error().message();
  EXPECT_EQ(answer->symbol, "FAB");
  EXPECT_DOUBLE_EQ(answer->price, -100.0);
  EXPECT_EQ(answer->venue_count, 3u);
  // The same bytes are not a string: decoding into the wrong type is reported, not thrown.
  EXPECT_TRUE(fabric::unpack<std::string>((*reply)[0]).is(errc::malformed));
}

INSTANTIATE_TEST_SUITE_P(AllTransports, ReqRepTest, ::testing::ValuesIn(fabric::testing::all_transports),
                         fabric::testing::transport_name{});

TEST(RequesterTest, RequestWithNoPeerReportsBackPressure) {
  fabric::context ctx;
  requester req(ctx, {.linger = 0ms});
  // Not connected anywhere: nothing can take the request, so it cannot even be sent.
  message request = make_message("nobody");
  auto reply = req.request(std::move(request), 50ms);
  EXPECT_TRUE(reply.is(errc::back_pressure)) << reply.error().message();
}

}  // namespace
