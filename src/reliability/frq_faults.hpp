// Fault injection points of the work queue, for the tests that prove their checker catches a
// broken queue. Not part of the public API and never set by the library itself: a test program
// that links the testing library sets one to plant a known bug, then asserts that its checker
// reports the duplicate completions that bug causes.
//
// Thread safety: the flags are atomics; set them before starting any producer.
#pragma once

namespace fabric::frq::faults {

/// When set, a task_producer reading its tasks back from the journal (at start, or when room
/// frees) skips the table of finished tasks, so a restarted producer hands out again tasks whose
/// completion it already recorded: they are completed, and recorded, twice.
void set_forget_done_tasks(bool on) noexcept;
bool forget_done_tasks() noexcept;

}  // namespace fabric::frq::faults
