// Fault injection points of the streams, for the tests that prove their checkers catch a broken
// subscriber. Not part of the public API and never set by the library itself: a test program
// that links the library sets one to plant a known bug, then asserts that its checker reports
// the loss that bug causes.
//
// Thread safety: the flags are atomics; set them before starting any subscriber.
#pragma once

namespace fabric::frs::faults {

/// When set, a stream_subscriber writes each durable position one message too far (next + 1):
/// nothing changes while it runs, but a restart resumes past a message it never delivered.
void set_position_one_too_far(bool on) noexcept;
bool position_one_too_far() noexcept;

}  // namespace fabric::frs::faults
