// Fault injection points of the Titanic server, for the tests that prove their checker catches a
// broken server. Not part of the public API and never set by the library itself: a test program
// that links the testing library sets them to plant a known bug, then asserts that its checker
// reports the orphaned requests that bug leaves.
//
// Thread safety: the flags are atomics; set them before starting any service.
#pragma once

#include <cstdint>

namespace fabric::tsp::faults {

/// When set, the server looks no client key up: a keyed post is stored as a new request with a
/// new UUID every time it comes, so a retried post (after a lost "200") leaves the first copy on
/// the server, unknown to its client, and the request runs twice.
void set_ignore_keys(bool on) noexcept;
bool ignore_keys() noexcept;

/// The next `n` keyed requests stored get no "200": the answer is dropped once the request is
/// durable, as if it was lost on the way, so their clients post them again. A deterministic way
/// to lose answers; harmless on its own (the retry finds the key), fatal with ignore_keys.
void set_drop_stored_answers(std::uint64_t n) noexcept;
/// Takes one of the answers to drop. Returns: true when this answer is to be dropped.
bool take_dropped_answer() noexcept;

/// When set, a Titanic replica (docs/ha.md, section 9.3) acknowledges the entries it fetches
/// without applying their changes: its journal then lacks what the active node answered, and a
/// failover to it loses requests that got "200".
void set_replica_skips_apply(bool on) noexcept;
bool replica_skips_apply() noexcept;

}  // namespace fabric::tsp::faults
