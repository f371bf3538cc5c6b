// LMDB error category and environment handle.
#include "journal/lmdb.hpp"

#include <fabric/error.hpp>

namespace fabric::journal_detail {
namespace {

class lmdb_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "lmdb"; }
  std::string message(int rc) const override { return mdb_strerror(rc); }
};

}  // namespace

const std::error_category& lmdb_category() noexcept {
  static const lmdb_category_impl instance;
  return instance;
}

void throw_lmdb(int rc, const std::string& what) {
  throw error(errc::io_error, what + ": " + mdb_strerror(rc));
}

env::env() {
  if (const int rc = mdb_env_create(&env_); rc != 0) throw_lmdb(rc, "mdb_env_create");
}

env::~env() { close(); }

}  // namespace fabric::journal_detail
