// Tests a tcp pipeline end to end: a ventilator fans tasks out to worker threads, a sink gathers results.
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::errc;
using fabric::message;
using fabric::puller;
using fabric::pusher;
using fabric::testing::wait_bound;
using clock_type = std::chrono::steady_clock;

struct task {
  std::int64_t id = 0;
  std::int64_t value = 0;
  MSGPACK_DEFINE(id, value)
};

struct outcome {
  std::int64_t id = 0;
  std::int64_t worker = 0;
  std::int64_t square = 0;
  MSGPACK_DEFINE(id, worker, square)
};

template <class T>
message one_frame(const T& value) {
  message m;
  m.push_back(fabric::pack(value));
  return m;
}

TEST(FanOutTest, PipelineDeliversEveryResultExactlyOnce) {
  constexpr int worker_count = 4;
  constexpr std::int64_t task_count = 4000;
  const fabric::socket_options options{.linger = 0ms, .send_timeout = wait_bound};

  fabric::context ctx;
  pusher ventilator(ctx, options);
  puller sink(ctx, options);
  fabric::monitor ventilator_events(ventilator);  // before bind, to see every worker arrive
  const std::string task_endpoint = ventilator.bind("tcp://127.0.0.1:*");
  const std::string result_endpoint = sink.bind("tcp://127.0.0.1:*");

  // Workers: each makes and uses its own two sockets, and runs until the sink has everything.
  std::atomic<bool> done{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < worker_count; ++w) {
    workers.emplace_back([&, w] {
      puller tasks(ctx, options);
      pusher results(ctx, options);
      fabric::testing::connect_and_wait(results, result_endpoint);
      fabric::testing::connect_and_wait(tasks, task_endpoint);
      const auto deadline = clock_type::now() + 4 * wait_bound;
      message m;
      while (!done && clock_type::now() < deadline) {
        auto got = tasks.recv(m, 20ms);
        if (got.is(errc::timeout)) continue;
        if (!got) {
          ADD_FAILURE() << "worker " << w << " recv: " << got.error().message();
          return;
        }
        auto t = m.size() == 1 ? fabric::unpack<task>(m[0]) : fabric::result<task>(errc::malformed);
        if (!t) {
          ADD_FAILURE() << "worker " << w << " got a bad task: " << t.error().message();
          return;
        }
        if (auto sent = results.send(one_frame(outcome{t->id, w, t->value * t->value})); !sent) {
          ADD_FAILURE() << "worker " << w << " send: " << sent.error().message();
          return;
        }
      }
    });
  }

  // The sink runs on its own thread so the ventilator never waits on an unread sink.
  std::vector<int> seen(static_cast<std::size_t>(task_count), 0);
  std::vector<std::int64_t> per_worker(worker_count, 0);
  std::int64_t square_sum = 0;
  std::int64_t received = 0;
  std::thread collector([&] {
    message m;
    for (; received < task_count; ++received) {
      auto got = sink.recv(m, wait_bound);
      if (!got) {
        ADD_FAILURE() << "sink recv after " << received << " results: " << got.error().message();
        return;
      }
      auto r = m.size() == 1 ? fabric::unpack<outcome>(m[0]) : fabric::result<outcome>(errc::malformed);
      if (!r || r->id < 0 || r->id >= task_count || r->worker < 0 || r->worker >= worker_count) {
        ADD_FAILURE() << "sink got a bad result";
        return;
      }
      ++seen[static_cast<std::size_t>(r->id)];
      ++per_worker[static_cast<std::size_t>(r->worker)];
      square_sum += r->square;
    }
  });

  // Send only once every worker's task connection is up, so the work is spread over all of them.
  int arrived = 0;
  while (arrived < worker_count &&
         ventilator_events.wait_for(fabric::socket_event::handshake_succeeded, wait_bound))
    ++arrived;
  EXPECT_EQ(arrived, worker_count);
  std::int64_t expected_sum = 0;
  for (std::int64_t id = 0; id < task_count && arrived == worker_count; ++id) {
    const std::int64_t value = id % 1000 - 500;
    expected_sum += value * value;
    if (auto sent = ventilator.send(one_frame(task{id, value})); !sent) {
      ADD_FAILURE() << "ventilator send " << id << ": " << sent.error().message();
      break;
    }
  }

  collector.join();
  done = true;
  for (auto& worker : workers) worker.join();

  EXPECT_EQ(received, task_count);
  EXPECT_EQ(square_sum, expected_sum);
  for (std::size_t id = 0; id < seen.size(); ++id)
    ASSERT_EQ(seen[id], 1) << "task " << id << " was seen " << seen[id] << " times";
  for (int w = 0; w < worker_count; ++w)
    EXPECT_GT(per_worker[static_cast<std::size_t>(w)], 0) << "worker " << w << " got no work";
  message extra;
  EXPECT_TRUE(sink.try_recv(extra).is(errc::would_block));
}

}  // namespace
