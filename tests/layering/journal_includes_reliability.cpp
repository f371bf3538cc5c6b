// Must not compile: the journal sits beneath the reliable protocols.
#include "reliability/mdp.hpp"
