// Reliable channels: an order service sends payment events to a billing service, which records
// each payment exactly once in its own journal table, however often either side is killed. Run the
// two roles as two processes (see --help); each keeps its state in a journal directory of its own.
#include <fabric/fabric.hpp>
#include <fabric/reliable_channel.hpp>

#include <signal.h>

#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "example_support.hpp"

using namespace fabric_examples;

namespace {

// The event on the wire, packed with msgpack (as an array: both sides agree on field order).
struct payment {
  std::uint64_t order_id = 0;
  std::uint64_t amount_cents = 0;
  MSGPACK_DEFINE(order_id, amount_cents)
};

// The billing service's own tables in its journal: one row per order (order id -> cents), and
// the running totals. The reliable channel keeps its own bookkeeping beside them ("frc.*").
constexpr std::string_view payments_table = "payments";
constexpr std::string_view totals_table = "totals";

// Numbers are stored as decimal text: plain to read back, whatever reads the journal.
std::uint64_t number(const fabric::result<std::optional<std::string>>& stored) {
  if (!stored) fail("cannot read the billing journal: " + stored.error().message());
  if (!*stored) return 0;
  std::uint64_t n = 0;
  const std::string& text = **stored;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  check(ec == std::errc() && end == text.data() + text.size(), "a damaged number in the billing journal");
  return n;
}

// The billing service: binds `endpoint` and runs until SIGINT or SIGTERM.
void run_billing(const std::string& dir, const std::string& endpoint) {
  // Stop signals are taken by sigwait() below rather than by a handler; blocked before any
  // thread starts, so every thread fabric starts inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // The journal's default durability is sync: a commit is on disk before it counts, so an
  // acknowledgement sent after it holds through a crash of the process or of the machine.
  fabric::journal j = fabric::journal::open(dir);
  fabric::context ctx;

  // Effectively-once: the handler runs inside the journal transaction that also records how far
  // this channel has been taken. Its row and the new totals commit together with that mark, or
  // (if the process dies first) none of them does and the order service sends the payment again.
  // So a payment is never lost and never counted twice. At-least-once would run the handler
  // outside the transaction: after a crash it could run twice for one payment, and the handler
  // itself would have to spot the duplicate.
  fabric::reliable_receiver_options options{
      .endpoint = endpoint,
      .mode = fabric::delivery_mode::effectively_once,
      .on_message_in =
          [](const fabric::reliable_delivery& d, fabric::journal_txn& t) {
            // A body that does not decode throws: the message is retried, then dead-lettered in
            // this journal with the reason, and the channel moves on.
            auto p = fabric::unpack<payment>(std::as_bytes(std::span(d.body.data(), d.body.size())));
            if (!p) fail("payment " + std::to_string(d.seq) + " does not decode: " + p.error().message());
            t.put(payments_table, std::to_string(p->order_id), std::to_string(p->amount_cents));
            // Reads through `t` see this transaction's own writes, so the totals stay right when
            // one commit takes many payments.
            const std::uint64_t count = number(t.get(totals_table, "payments")) + 1;
            const std::uint64_t cents = number(t.get(totals_table, "cents")) + p->amount_cents;
            t.put(totals_table, "payments", std::to_string(count));
            t.put(totals_table, "cents", std::to_string(cents));
            // Printed before the commit: if the process dies before it, these rows are undone,
            // and this line shows up again when the payment comes back after the restart.
            if (count % 100 == 0) std::printf("billing: %llu payments, %llu cents\n",
                                              static_cast<unsigned long long>(count),
                                              static_cast<unsigned long long>(cents));
          },
  };
  // Bound, not started yet: the line below, with the endpoint, is the first this process prints.
  fabric::reliable_receiver in(ctx, j, std::move(options), fabric::deferred_start);
  std::printf("billing: %llu payments on record (%llu cents); listening on %s\n",
              static_cast<unsigned long long>(number(j.get(totals_table, "payments"))),
              static_cast<unsigned long long>(number(j.get(totals_table, "cents"))), in.endpoint().c_str());
  in.start();

  int sig = 0;
  sigwait(&stop_signals, &sig);
  check(in.stop(), "the receiver did not stop in time");
  if (auto failure = in.failure()) std::rethrow_exception(failure);
  std::printf("billing: stopping with %llu payments on record (%llu cents)\n",
              static_cast<unsigned long long>(number(j.get(totals_table, "payments"))),
              static_cast<unsigned long long>(number(j.get(totals_table, "cents"))));
}

// How long the order service waits, after its last send, for billing to acknowledge them all.
constexpr std::chrono::seconds acknowledgement_wait{30};

// Some amount between 1.00 and 999.99, different from one order to the next.
std::uint64_t amount_of(std::uint64_t order_id) { return 100 + order_id * 7919 % 99900; }

// The order service: sends `count` payments to billing at `endpoint`, at most `rate` a second
// (0: as fast as send() returns), then waits until billing has acknowledged every one (each is
// then durable in billing's journal).
void run_orders(const std::string& dir, const std::string& endpoint, std::uint64_t count, std::uint64_t rate) {
  fabric::journal j = fabric::journal::open(dir);
  fabric::context ctx;

  // Told on the sender's thread how far billing has durably taken the stream.
  std::mutex mu;
  std::condition_variable moved;
  std::uint64_t acknowledged = 0;
  fabric::reliable_sender out(ctx, j,
                              {.name = "orders",  // how billing knows us, across our restarts
                               .receiver = "billing",
                               .endpoint = endpoint,
                               .on_acknowledged = [&](std::string_view, std::uint64_t acked) {
                                 std::lock_guard lock(mu);
                                 acknowledged = acked;
                                 moved.notify_all();
                               }});

  // The outbox is in our journal, so a restarted order service knows how many payments it has
  // already sent (one message per order) and carries on with new order ids.
  auto sent_before = j.last_seq(out.outbox_stream("payments"));
  if (!sent_before) fail("cannot read the orders journal: " + sent_before.error().message());
  const std::uint64_t first = sent_before->value_or(0) + 1;
  const std::uint64_t last = first + count - 1;

  std::uint64_t cents = 0;
  // Orders come in at the pace customers place them, not all at once.
  const std::chrono::nanoseconds gap(rate > 0 ? 1'000'000'000 / static_cast<std::int64_t>(rate) : 0);
  auto next = std::chrono::steady_clock::now();
  for (std::uint64_t order = first; order <= last; ++order) {
    if (rate > 0) std::this_thread::sleep_until(next += gap);
    const payment p{order, amount_of(order)};
    // send() returns once the payment is durable in our own outbox, not once billing has it:
    // from here on fabric delivers it, through restarts of either side.
    auto seq = out.send("payments", fabric::view(fabric::pack(p)));
    if (!seq) fail("payment " + std::to_string(order) + " not sent: " + seq.error().message());
    cents += p.amount_cents;
    if (order % 500 == 0) std::printf("orders: order %llu sent\n", static_cast<unsigned long long>(order));
  }

  std::unique_lock lock(mu);
  if (!moved.wait_for(lock, acknowledgement_wait, [&] { return acknowledged >= last; }))
    fail("billing has acknowledged orders up to " + std::to_string(acknowledged) + " of " +
         std::to_string(last) + "; is it running at " + endpoint +
         "? The rest stay in the outbox and go out when the order service runs again.");
  std::printf("orders: %llu payments acknowledged by billing (%llu cents), orders %llu to %llu\n",
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(cents),
              static_cast<unsigned long long>(first), static_cast<unsigned long long>(last));
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-reliable-billing billing --journal DIR [--endpoint E]\n"
               "       fabric-example-reliable-billing orders --journal DIR [--endpoint E] [--payments N]\n"
               "                                              [--rate R]\n"
               "  billing: records each payment once in the journal at DIR; runs until SIGINT or\n"
               "           SIGTERM. E defaults to tcp://127.0.0.1:7100 (tcp://127.0.0.1:* picks a port).\n"
               "  orders:  sends N payments (default 1000) to billing at E, at most R a second (default:\n"
               "           no limit), with its outbox in DIR, and returns once billing has them all.\n"
               "           Kill billing and start it again meanwhile: no payment is lost or counted twice.\n");
}

}  // namespace

int main(int argc, char** argv) {
  // Line by line even into a pipe, so whoever watches this process sees each line as it happens.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  const std::string_view role = argc > 1 ? argv[1] : "";
  if (role == "--help" || role == "-h") {
    print_usage(stdout);
    return EXIT_SUCCESS;
  }
  std::string journal_dir;
  std::string endpoint = "tcp://127.0.0.1:7100";
  std::uint64_t payments = 1000;
  std::uint64_t rate = 0;
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--help" || arg == "-h") {
      print_usage(stdout);
      return EXIT_SUCCESS;
    } else if (arg == "--journal" && has_value) {
      journal_dir = argv[++i];
    } else if (arg == "--endpoint" && has_value) {
      endpoint = argv[++i];
    } else if ((arg == "--payments" || arg == "--rate") && has_value && role == "orders") {
      std::uint64_t& n = arg == "--payments" ? payments : rate;
      const std::string_view text = argv[++i];
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (ec == std::errc() && end == text.data() + text.size() && n > 0 && n <= 1'000'000'000) continue;
      std::fprintf(stderr, "reliable-billing: bad %s '%s': a whole number from 1 to 10^9\n", argv[i - 1], argv[i]);
      return 2;
    } else {
      std::fprintf(stderr, "reliable-billing: bad argument '%s'\n", argv[i]);
      print_usage(stderr);
      return 2;
    }
  }
  if ((role != "billing" && role != "orders") || journal_dir.empty()) {
    std::fprintf(stderr, "reliable-billing: say which service to run, and its --journal directory\n");
    print_usage(stderr);
    return 2;
  }
  try {
    if (role == "billing")
      run_billing(journal_dir, endpoint);
    else
      run_orders(journal_dir, endpoint, payments, rate);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reliable-billing: %s FAILED: %s\n", std::string(role).c_str(), e.what());
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
