// Must compile: the reliable protocols see every layer beneath them. It also shows that the probes
// which must not compile fail for the include they make, not for a broken probe build.
#include "core/machine.hpp"
#include "journal/record.hpp"
#include "reliability/mdp.hpp"

#include <fabric/journal.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/push_pull.hpp>
