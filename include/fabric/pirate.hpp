// The Pirate family in one include, for code written before each got its own header.
#pragma once

#include <fabric/lazy_pirate.hpp>
#include <fabric/paranoid_pirate.hpp>
