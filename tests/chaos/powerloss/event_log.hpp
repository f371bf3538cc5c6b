// The event log of the power-loss harness: the byte layout the shim writes and the model reads.
// Both sides run on the same machine, so fields are in host byte order.
//
// log    = *event
// event  = header data          ; one per intercepted call, in the order the calls happened
// header = magic type flags file reserved offset size   ; 32 bytes, struct event_header below
// data   = size OCTET           ; write: the bytes written; open: the path; rename: the new
//                               ; path; mark: the mark; unsupported: why; empty for the others
#pragma once

#include <cstdint>

namespace fabric::testing::powerloss {

/// "FPL1", at the start of every event, so a torn or misread log is noticed.
inline constexpr std::uint32_t event_magic = 0x314c5046;

/// What an event records. The values are the log format: never renumber them.
enum class event_type : std::uint16_t {
  open = 1,         ///< a tracked file was opened: `file` is its id, data its path
  write = 2,        ///< `size` bytes written at `offset` of `file`
  sync = 3,         ///< fsync or fdatasync of `file` succeeded: everything written before is durable
  truncate = 4,     ///< `file` was truncated (or extended) to `offset` bytes
  mark = 5,         ///< a completion mark from the program under test; data is the mark
  range_hint = 6,   ///< sync_file_range on `file`: starts write-back, promises nothing
  msync = 7,        ///< msync of some mapping: logged only so a reader can see it happened
  unsupported = 8,  ///< the program did something the model cannot follow; data says what
  rename = 9,       ///< `file` was renamed into the directory whose id is `offset`; data is its new
                    ///< absolute path. Durable once that directory is synced (dir_sync)
  dir_sync = 10,    ///< fsync or fdatasync of the directory with id `offset` (a directory that
                    ///< tracked files were renamed into) succeeded; `file` is 0
};

/// event_header::flags bits.
inline constexpr std::uint16_t flag_durable = 1;  ///< open: the descriptor has O_DSYNC (or O_SYNC);
                                                  ///< write: the write was synchronous

struct event_header {
  std::uint32_t magic;
  std::uint16_t type;
  std::uint16_t flags;
  std::uint32_t file;  ///< the shim's id for a tracked file (by device and inode), from 1;
                       ///< directories have ids of their own, also from 1
  std::uint32_t reserved;
  std::uint64_t offset;
  std::uint64_t size;  ///< bytes of data that follow the header
};
static_assert(sizeof(event_header) == 32);

}  // namespace fabric::testing::powerloss
