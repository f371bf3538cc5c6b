// The verdict on a run of a delivery protocol, in the manner of Jepsen's total-queue checker:
// given what the senders know they sent and what the receivers' applications saw, it proves
// that nothing acknowledged was lost, nothing was duplicated (where the mode promises that),
// order held per stream, and nothing arrived that was never sent.
//
//   delivery_history h;
//   h.sent("orders", "o-1");        // send() completed: must arrive
//   h.attempted("orders", "o-2");   // the sender died inside send(): may arrive, or not
//   h.delivered("orders", "o-1");   // what the receiving application saw, in the order it saw it
//   auto r = check(h, delivery_mode::effectively_once);
//   EXPECT_TRUE(r.ok()) << r.describe();
//
// Histories come from the processes under test (their logs, or the receiver's own journal
// tables, which are the evidence in effectively-once mode), gathered after the run.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::testing {

enum class delivery_mode {
  /// Duplicates are allowed (and counted) where a restart repeats what was delivered, from a
  /// point on and in order; loss, disorder, gaps and phantoms are not.
  at_least_once,
  effectively_once,  ///< no duplicate either
};

class delivery_history {
 public:
  /// A send of `id` on `stream` completed: the protocol owes its delivery. Ids are unique per
  /// stream, and a stream's sends are recorded in the order they were made.
  void sent(std::string_view stream, std::string id);
  /// A send of `id` began but its completion was not seen (the sender was killed): it may be
  /// delivered or not, but if it is, in its place in the order.
  void attempted(std::string_view stream, std::string id);
  /// The receiving application saw `id` on `stream`; calls are in the order it saw them.
  void delivered(std::string_view stream, std::string id);

 private:
  friend struct check_report check(const delivery_history&, delivery_mode);
  struct send {
    std::string id;
    bool completed;
  };
  std::map<std::string, std::vector<send>, std::less<>> sends_;
  std::map<std::string, std::vector<std::string>, std::less<>> deliveries_;
};

struct check_report {
  struct finding {
    std::string stream;
    std::string id;
    std::string what;
  };
  std::size_t sent = 0;        ///< completed sends
  std::size_t delivered = 0;   ///< deliveries seen, duplicates included
  std::size_t lost = 0;        ///< completed sends never delivered
  std::size_t duplicated = 0;  ///< deliveries beyond the first of an id
  std::size_t reordered = 0;   ///< first deliveries that came after a later send's
  std::size_t phantoms = 0;    ///< deliveries of ids never sent nor attempted
  /// Deliveries that jumped forward over a message already delivered earlier: a redelivery
  /// after a restart must repeat from a point on, never leave out part of what it repeats.
  std::size_t gaps = 0;
  std::vector<finding> examples;  ///< the first few findings, for the failure message

  /// True when the history keeps every promise of the mode it was checked under.
  bool ok() const noexcept { return ok_; }
  /// A one-paragraph account: the counts, then the first findings.
  std::string describe() const;

 private:
  friend check_report check(const delivery_history&, delivery_mode);
  bool ok_ = true;
};

check_report check(const delivery_history& h, delivery_mode mode);

}  // namespace fabric::testing
