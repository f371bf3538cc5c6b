// The Majordomo broker machine's records of requests, workers and services (see mdp_broker.hpp),
// shared by the files that make up the machine: its message handling (mdp_broker_machine.cpp) and
// its counters and self-check (mdp_broker_books.cpp).
#pragma once

#include "reliability/mdp_broker.hpp"

#include <fabric/message.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::mdp {

// A request as received: [client-id, stack..., "", "MDPC01", service, body...].
struct broker_machine::pending {
  message m;
  std::uint16_t body_at = 0;  // index of the first body frame (== index of service + 1)
  std::uint32_t dispatches = 0;
  std::size_t bytes = 0;  // m.byte_size(), charged to the byte budgets until it is answered
  std::uint64_t token = 0;  // the address a credit worker was given for it (0: the client's id)
  std::uint64_t serial = 0;  // numbers it for check_books()
  time_point enqueued{};
  // Expired while a worker held it: only the client's id is kept, so that the worker's late
  // reply is known for what it is, and the place in the worker's credit stays taken.
  bool expired = false;

  std::string_view service() const noexcept { return m.view(body_at - 1U); }
  std::string_view client() const noexcept { return m.view(0); }
  // Drops the request body, leaving the envelope a reply goes back in.
  void keep_envelope() {
    auto& f = m.frames();
    f.erase(f.begin() + body_at, f.end());
  }
  void keep_client_only() {
    auto& f = m.frames();
    f.erase(f.begin() + 1, f.end());
    bytes = 0;
    expired = true;
  }
};

struct broker_machine::worker {
  std::string id;
  service* svc = nullptr;
  time_point expiry{};
  time_point last_sent{};
  std::vector<pending> jobs;     // the requests it is handling, oldest first
  std::uint32_t credit = 1;      // how many it may hold at once (1 in 7/MDP)
  worker* prev = nullptr;        // the service's ready list (workers with credit to spare),
  worker* next = nullptr;        // longest waiting first
  bool idle = false;             // in the ready list
};

struct broker_machine::service {
  std::string name;
  std::deque<pending> queue;
  worker* idle_head = nullptr;
  worker* idle_tail = nullptr;
  std::size_t idle_count = 0;
  std::size_t workers = 0;
  time_point last_active{};
  service_stats counters{};
  service* unserved_prev = nullptr;  // the list of services with no workers, least recently
  service* unserved_next = nullptr;  // asked for first: where room for a worker comes from
  bool unserved = false;
};

}  // namespace fabric::mdp
