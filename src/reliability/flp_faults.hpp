// Fault injection points of the Freelance client, for the chaos tests that prove their checker
// catches a client that loses or duplicates answers. Not part of the public API and never set by
// the library itself: a test that links the library sets one to plant a known bug, then asserts
// that its checker reports what that bug causes.
//
// Thread safety: the flags are atomics; set them before making a client.
#pragma once

namespace fabric::flp::faults {

/// When set, a reply whose request is no longer outstanding (late, or a duplicate) is delivered
/// to the application as another completion instead of being dropped: answers are duplicated.
void set_deliver_late_replies(bool on) noexcept;
bool deliver_late_replies() noexcept;

/// When set, the requests a server held when it was declared dead or unreachable are forgotten
/// instead of being sent to another server: they never complete, and answers are lost.
void set_forget_lost_requests(bool on) noexcept;
bool forget_lost_requests() noexcept;

}  // namespace fabric::flp::faults
