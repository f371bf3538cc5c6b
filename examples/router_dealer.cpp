// Asynchronous request/reply: a ROUTER server answers several DEALER clients, each with its own
// routing id and many requests in flight; every reply is routed back to the client that asked.
#include <fabric/fabric.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "example_support.hpp"

using namespace fabric_examples;

namespace {

// The wire protocol. Client -> server: [tag, text]. Server -> client: [tag, TEXT, id], where id is
// the routing id the server saw, so clients can check that replies reached the right peer.
// The control request [shutdown] ends the server.
constexpr std::string_view shutdown_command = "shutdown";
constexpr std::size_t requests_per_client = 25;

std::string upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

// Serves until a shutdown request. It answers whatever has queued up in reverse order of arrival,
// the way a server with uneven work would: clients match replies by tag, never by order.
void serve(fabric::router& front) {
  std::vector<fabric::message> batch;
  std::size_t served = 0;
  for (;;) {
    batch.clear();
    fabric::message m;
    if (auto r = front.recv(m, patience); !r)
      fail("server: no request within 5 s: " + r.error().message());
    batch.push_back(std::move(m));
    while (batch.size() < 64 && front.try_recv(m)) batch.push_back(std::move(m));

    bool stopping = false;
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
      fabric::message& request = *it;
      // [peer, tag, text], or [peer, shutdown]: anything else is dropped, as a server must do
      // with input it cannot answer.
      fabric::message reply;
      if (request.size() == 2 && request.view(1) == shutdown_command) {
        reply = fabric::make_message("bye");
        stopping = true;
      } else if (request.size() == 3) {
        reply = fabric::make_message(request.view(1), upper(request.view(2)), request.view(0));
        ++served;
      } else {
        std::printf("server: dropped a malformed request of %zu frames\n", request.size());
        continue;
      }
      if (auto s = front.send_to(request[0], std::move(reply)); !s)
        fail("server: cannot reply to '" + std::string(request.view(0)) +
             "': " + s.error().message());
    }
    if (stopping) {
      std::printf("server: served %zu requests, shutting down\n", served);
      return;
    }
  }
}

// A client sends all its requests at once, then collects the replies in whatever order they come.
void run_client(fabric::context& ctx, const std::string& id, const std::string& address) {
  // The routing id is how the server tells clients apart; a fixed one also survives reconnects.
  fabric::dealer client(ctx, {.send_timeout = patience, .routing_id = id});
  client.connect(address);

  std::map<std::string, std::string> pending;  // tag -> the text sent with it
  for (std::size_t i = 0; i < requests_per_client; ++i) {
    const std::string tag = std::to_string(i);
    const std::string text = id + " request " + tag;
    if (auto s = client.send(fabric::make_message(tag, text)); !s)
      fail(id + ": cannot send: " + s.error().message());
    pending.emplace(tag, text);
  }

  std::size_t out_of_order = 0;
  std::size_t next_in_order = 0;
  fabric::message reply;
  while (!pending.empty()) {
    if (auto r = client.recv(reply, patience); !r)
      fail(id + ": " + std::to_string(pending.size()) + " replies missing after 5 s: " +
           r.error().message());
    check(reply.size() == 3, id + ": a reply must have 3 frames");
    const std::string tag(reply.view(0));
    const auto it = pending.find(tag);
    check(it != pending.end(), id + ": reply to unknown or already answered request " + tag);
    check(reply.view(1) == upper(it->second), id + ": wrong answer to request " + tag);
    check(reply.view(2) == id, id + ": got a reply meant for '" + std::string(reply.view(2)) + "'");
    if (tag != std::to_string(next_in_order)) ++out_of_order;
    ++next_in_order;
    pending.erase(it);
  }
  std::printf("%s: all %zu replies came back (%zu out of order)\n", id.c_str(),
              requests_per_client, out_of_order);
}

void run(transport kind) {
  const endpoints where("router-dealer", kind);
  fabric::context ctx;

  fabric::router front(ctx, {.send_timeout = patience});
  const std::string address = front.bind(where.bind_address("frontend"));
  std::printf("server: listening on %s\n", address.c_str());
  // Failures are reported as they happen, on the thread that saw them: the other side only
  // sees the effect, a timeout.
  bool server_failed = false;
  std::jthread server([&server_failed, front = std::move(front)]() mutable {
    try {
      serve(front);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "router_dealer: FAILED: %s\n", e.what());
      server_failed = true;
    }
  });

  const std::vector<std::string> ids = {"client-a", "client-b", "client-c"};
  std::vector<char> client_failed(ids.size(), 0);  // not vector<bool>: each thread sets its own
  {
    std::vector<std::jthread> clients;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      clients.emplace_back([&, i] {
        try {
          run_client(ctx, ids[i], address);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "router_dealer: FAILED: %s\n", e.what());
          client_failed[i] = 1;
        }
      });
    }
  }  // joins the clients

  // The admin connection asks the server to stop, whatever happened to the clients.
  fabric::dealer admin(ctx, {.send_timeout = patience, .routing_id = "admin"});
  admin.connect(address);
  if (auto s = admin.send(fabric::make_message(shutdown_command)); !s)
    fail("admin: cannot send shutdown: " + s.error().message());
  auto bye = admin.recv(patience);
  server.join();
  check(!server_failed, "the server failed");
  for (std::size_t i = 0; i < ids.size(); ++i) check(client_failed[i] == 0, ids[i] + " failed");
  if (!bye) fail("admin: no answer to shutdown: " + bye.error().message());
  check(bye->size() == 1 && bye->view(0) == "bye", "admin: unexpected answer to shutdown");
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-router-dealer [--transport inproc|ipc|tcp] [--help]\n"
               "  A ROUTER server answers three DEALER clients that each pipeline 25 requests;\n"
               "  each client checks every reply came back to it. Default transport: tcp on\n"
               "  127.0.0.1 with a port the OS picks.\n");
}

}  // namespace

int main(int argc, char** argv) {
  transport kind = transport::tcp;
  return run_example({.program = "router_dealer", .print_usage = print_usage, .kind = &kind},
                     argc, argv, [&] { run(kind); });
}
