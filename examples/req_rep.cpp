// Request/reply: a replier thread serves a tiny calculator whose requests and replies are
// msgpack structs, sent with fabric::pack and checked on arrival with fabric::unpack<T>.
#include <fabric/fabric.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "example_support.hpp"

using namespace fabric_examples;

namespace {

// The wire types. MSGPACK_DEFINE packs them as arrays, so both sides must agree on field order.
struct calc_request {
  std::string op;  // "add", "sub", "mul", "div", or "stop" to end the service
  double lhs = 0;
  double rhs = 0;
  MSGPACK_DEFINE(op, lhs, rhs)
};

struct calc_reply {
  bool ok = false;
  double value = 0;
  std::string error;
  MSGPACK_DEFINE(ok, value, error)
};

calc_reply evaluate(const calc_request& r) {
  if (r.op == "add") return {true, r.lhs + r.rhs, {}};
  if (r.op == "sub") return {true, r.lhs - r.rhs, {}};
  if (r.op == "mul") return {true, r.lhs * r.rhs, {}};
  if (r.op == "div") {
    if (r.rhs == 0) return {false, 0, "division by zero"};
    return {true, r.lhs / r.rhs, {}};
  }
  return {false, 0, "unknown operation '" + r.op + "'"};
}

// Answers requests until one says "stop". Bad input gets an error reply rather than killing the
// service: a REP socket must answer every request before it can receive the next.
void serve(fabric::replier& rep) {
  fabric::message request;
  for (std::size_t served = 0;; ++served) {
    if (auto r = rep.recv(request, patience); !r)
      fail("replier: no request within 5 s: " + r.error().message());
    auto decoded = request.size() == 1 ? fabric::unpack<calc_request>(request[0])
                                       : fabric::result<calc_request>(fabric::errc::malformed);
    calc_reply reply;
    bool stop = false;
    if (!decoded) {
      reply.error = "malformed request: " + decoded.error().message();
    } else if (decoded->op == "stop") {
      reply.ok = true;
      stop = true;
    } else {
      reply = evaluate(*decoded);
    }
    fabric::message out;
    out.push_back(fabric::pack(reply));
    if (auto s = rep.send(std::move(out), patience); !s)
      fail("replier: cannot send a reply: " + s.error().message());
    if (stop) {
      std::printf("replier: stopping after %zu requests\n", served);
      return;
    }
  }
}

calc_reply call(fabric::requester& req, fabric::message&& request) {
  auto reply = req.request(std::move(request), patience);
  if (!reply) fail("requester: no reply: " + reply.error().message());
  check(reply->size() == 1, "requester: a reply must have exactly one frame");
  auto decoded = fabric::unpack<calc_reply>((*reply)[0]);
  if (!decoded) fail("requester: undecodable reply: " + decoded.error().message());
  return std::move(*decoded);
}

calc_reply call(fabric::requester& req, const calc_request& request) {
  fabric::message m;
  m.push_back(fabric::pack(request));
  return call(req, std::move(m));
}

struct test_case {
  calc_request request;
  calc_reply expected;
};

void run(transport kind) {
  const endpoints where("req-rep", kind);
  fabric::context ctx;

  // Bind before starting the thread: the requester needs the resolved address, and a socket may
  // change threads only across a barrier such as std::thread's constructor.
  fabric::replier rep(ctx);
  const std::string address = rep.bind(where.bind_address("calculator"));
  std::printf("replier: serving on %s\n", address.c_str());

  bool server_failed = false;
  std::jthread server([&server_failed, rep = std::move(rep)]() mutable {
    try {
      serve(rep);
    } catch (const std::exception& e) {
      // Reported as it happens: the requester only sees the effect, a timeout.
      std::fprintf(stderr, "req_rep: FAILED: %s\n", e.what());
      server_failed = true;
    }
  });

  // A REQ socket queues the first request until the connection is up, so no wait is needed here.
  fabric::requester req(ctx);
  req.connect(address);

  const std::vector<test_case> cases = {
      {{"add", 2, 3}, {true, 5, {}}},
      {{"sub", 10, 4.5}, {true, 5.5, {}}},
      {{"mul", 6, 7}, {true, 42, {}}},
      {{"div", 1, 4}, {true, 0.25, {}}},
      {{"div", 1, 0}, {false, 0, "division by zero"}},
      {{"pow", 2, 8}, {false, 0, "unknown operation 'pow'"}},
  };
  for (const auto& [request, expected] : cases) {
    const calc_reply got = call(req, request);
    if (got.ok)
      std::printf("requester: %g %s %g -> %g\n", request.lhs, request.op.c_str(), request.rhs,
                  got.value);
    else
      std::printf("requester: %g %s %g -> error: %s\n", request.lhs, request.op.c_str(),
                  request.rhs, got.error.c_str());
    // Exact comparison is fine: every expected value is exactly representable.
    check(got.ok == expected.ok && got.value == expected.value && got.error == expected.error,
          "requester: wrong answer for '" + request.op + "'");
  }

  // Bytes that are not a calc_request: unpack<T> reports errc::malformed instead of throwing.
  const calc_reply rejected = call(req, fabric::message("not msgpack"));
  std::printf("requester: garbage -> error: %s\n", rejected.error.c_str());
  check(!rejected.ok && rejected.error.starts_with("malformed request"),
        "requester: the replier should have rejected a malformed request");

  check(call(req, calc_request{"stop", 0, 0}).ok, "requester: the replier refused to stop");
  server.join();
  check(!server_failed, "the replier failed");
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-req-rep [--transport inproc|ipc|tcp] [--help]\n"
               "  A replier thread serves a msgpack-typed calculator; a requester checks its\n"
               "  answers. Default transport: tcp on 127.0.0.1 with a port the OS picks.\n");
}

}  // namespace

int main(int argc, char** argv) {
  transport kind = transport::tcp;
  return run_example({.program = "req_rep", .print_usage = print_usage, .kind = &kind},
                     argc, argv, [&] { run(kind); });
}
