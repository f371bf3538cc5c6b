// Must not compile: core sits beneath patterns (docs/architecture.md, "Layers").
#include <fabric/push_pull.hpp>
