// Must not compile: patterns and the journal are side by side; neither sees the other.
#include <fabric/journal.hpp>
