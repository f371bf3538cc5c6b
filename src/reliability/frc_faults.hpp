// Fault injection points of the reliable channels, for the tests that prove their checkers catch
// a broken channel. Not part of the public API and never set by the library itself: a test
// program that links the library sets one to plant a known bug, then asserts that its checker
// reports the loss or duplication that bug causes.
//
// Thread safety: the flags are atomics; set them before starting any channel.
#pragma once

namespace fabric::frc::faults {

/// When set, a reliable_receiver reports each commit as durable as soon as it is submitted, so
/// its ACK leaves before the mark is in the journal: a crash then loses acknowledged messages.
void set_ack_before_durable(bool on) noexcept;
bool ack_before_durable() noexcept;

}  // namespace fabric::frc::faults
