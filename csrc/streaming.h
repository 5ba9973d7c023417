// When kernels write their outputs with non-temporal ("streaming") stores.
#pragma once
#include <cstdint>

namespace genesis::streaming {

// Outputs of at least this many bytes are streamed: by default the size of the
// last-level cache that CPU 0 shares (an output that large is evicted before
// anything reads it, and streaming saves reading each line in before writing it).
int64_t min_bytes();
void set_min_bytes(int64_t bytes);

}  // namespace genesis::streaming
