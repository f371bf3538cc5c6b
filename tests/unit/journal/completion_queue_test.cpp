// Tests of fabric::completion_queue: journal completions delivered to a reactor's thread through
// the descriptor it watches, in order, errors included, from many producers at once.
#include <fabric/completion_queue.hpp>
#include <fabric/journal.hpp>
#include <fabric/reactor.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <poll.h>

#include <map>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using fabric::completion_queue;
using fabric::errc;
using fabric::journal;
using fabric::journal_options;
using fabric::reactor;
using fabric::testing::fast_journal_options;
using fabric::testing::temp_dir;
using fabric::testing::wait_bound;
using fabric::testing::writer_hold;

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

struct received {
  std::uint64_t token;
  fabric::result<std::uint64_t> seq;
  std::thread::id thread;
};

// Runs `loop` on this thread, draining `queue` whenever its descriptor is readable, until
// `count` completions have arrived or wait_bound passes.
std::vector<received> collect(reactor& loop, completion_queue& queue, std::size_t count) {
  std::vector<received> got;
  loop.add_fd(queue.fd(), [&] {
    queue.drain([&](completion_queue::completion c) {
      got.push_back({c.token, std::move(c.seq), std::this_thread::get_id()});
    });
    if (got.size() >= count) loop.stop();
  });
  const auto give_up = loop.after(wait_bound, [&] {
    ADD_FAILURE() << "only " << got.size() << " of " << count << " completions arrived";
    loop.stop();
  });
  EXPECT_TRUE(loop.run());
  loop.cancel(give_up);
  loop.remove_fd(queue.fd());
  return got;
}

TEST(CompletionQueueTest, AReactorReceivesEveryCompletionInOrderOnItsOwnThread) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  completion_queue queue;
  reactor loop;
  constexpr std::uint64_t producers = 4;
  constexpr std::uint64_t per_producer = 250;
  std::vector<std::thread> threads;
  for (std::uint64_t p = 0; p < producers; ++p)
    threads.emplace_back([&, p] {
      for (std::uint64_t i = 0; i < per_producer; ++i)
        j.append("stream-" + std::to_string(p), "payload", queue, p << 32 | i);
    });
  const auto got = collect(loop, queue, producers * per_producer);
  for (auto& t : threads) t.join();

  ASSERT_EQ(got.size(), producers * per_producer);
  std::map<std::uint64_t, std::uint64_t> next;  // per producer: the next index expected
  for (const auto& r : got) {
    EXPECT_EQ(r.thread, std::this_thread::get_id());
    const std::uint64_t producer = r.token >> 32;
    const std::uint64_t index = r.token & 0xFFFFFFFFu;
    EXPECT_EQ(index, next[producer]++) << "producer " << producer << " completed out of order";
    ASSERT_TRUE(r.seq);
    EXPECT_EQ(*r.seq, index + 1);  // each producer has a stream of its own
  }
  EXPECT_FALSE(readable(queue.fd()));
  EXPECT_EQ(queue.size(), 0u);
}

TEST(CompletionQueueTest, RefusedAppendsCompleteThroughTheQueueAtOnce) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.max_pending = 1;
  auto j = journal::open(dir.path(), o);
  completion_queue queue;
  {
    writer_hold hold(j, "held");
    j.append("s", "queued", queue, 1);           // waits behind the parked writer
    j.append("s", "no room", queue, 2);          // the queue is full: back_pressure
    j.append("", "no stream name", queue, 3);    // too_large
    EXPECT_EQ(queue.size(), 2u);                 // both refusals before append returned
    EXPECT_TRUE(readable(queue.fd()));
  }
  reactor loop;
  const auto got = collect(loop, queue, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].token, 2u);
  EXPECT_TRUE(got[0].seq.is(errc::back_pressure));
  EXPECT_EQ(got[1].token, 3u);
  EXPECT_TRUE(got[1].seq.is(errc::too_large));
  EXPECT_EQ(got[2].token, 1u);
  EXPECT_EQ(got[2].seq.value(), 1u);
}

TEST(CompletionQueueTest, AReadOnlyJournalCompletesWithAnError) {
  temp_dir dir;
  { auto j = journal::open(dir.path(), fast_journal_options()); }
  auto reader = journal::open(dir.path(), {.read_only = true});
  completion_queue queue;
  reader.append("s", "x", queue, 7);
  reactor loop;
  const auto got = collect(loop, queue, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].token, 7u);
  EXPECT_TRUE(got[0].seq.is(errc::invalid_state));
}

TEST(CompletionQueueTest, ASchedulesIdArrivesOnceItIsDurable) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  completion_queue queue;
  j.schedule("s", "later", INT64_MAX, queue, 40);
  j.schedule("s", "later too", INT64_MAX, queue, 41);
  reactor loop;
  const auto got = collect(loop, queue, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].token, 40u);
  EXPECT_EQ(got[0].seq.value(), 1u);
  EXPECT_EQ(got[1].token, 41u);
  EXPECT_EQ(got[1].seq.value(), 2u);
  EXPECT_EQ(j.scheduled_count().value(), 2u);
}

TEST(CompletionQueueTest, ItsDescriptorIsReadableExactlyWhileCompletionsWait) {
  completion_queue queue;
  EXPECT_FALSE(readable(queue.fd()));
  queue.push(1, std::uint64_t{10});
  queue.push(2, std::uint64_t{11});
  EXPECT_TRUE(readable(queue.fd()));
  std::vector<std::uint64_t> tokens;
  EXPECT_EQ(queue.drain([&](completion_queue::completion c) { tokens.push_back(c.token); }), 2u);
  EXPECT_EQ(tokens, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_FALSE(readable(queue.fd()));
  EXPECT_EQ(queue.drain([](completion_queue::completion) {}), 0u);
}

TEST(CompletionQueueTest, AHandlerThatThrowsLeavesTheRestQueuedInOrder) {
  completion_queue queue;
  for (std::uint64_t t = 1; t <= 4; ++t) queue.push(t, t);
  std::vector<std::uint64_t> tokens;
  EXPECT_THROW(queue.drain([&](completion_queue::completion c) {
    tokens.push_back(c.token);
    if (c.token == 2) throw std::runtime_error("handler failed");
  }),
               std::runtime_error);
  queue.push(5, std::uint64_t{5});
  EXPECT_TRUE(readable(queue.fd()));
  queue.drain([&](completion_queue::completion c) { tokens.push_back(c.token); });
  EXPECT_EQ(tokens, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
}

}  // namespace
