// Pipeline sockets: everything they need is inline in push_pull.hpp. This file keeps the
// one-source-per-pattern layout and checks the header stands alone.
#include <fabric/push_pull.hpp>
