// A cache of large host memory blocks, for the arrays the CPU backend allocates.
//
// Memory that malloc takes fresh from the kernel is mapped page by page on first
// touch: a 4 MB output costs about a thousand page faults, each writing zeros
// and taking the kernel's page-table lock.  A training step allocates the same
// large outputs and saved activations on every step, so genesis keeps freed
// blocks, by size class, and hands them out again already mapped.
#pragma once
#include <cstddef>

namespace genesis::host_cache {

struct Stats {
  size_t cached_bytes;  // free blocks kept for reuse
  size_t live_bytes;    // blocks handed out and not yet released
  size_t limit;         // cached_bytes never exceeds this
  size_t hits, misses;  // allocations served from the cache / from malloc
};

// A block of at least `bytes` bytes, page (4 KiB) aligned; throws std::bad_alloc.
void* allocate(size_t bytes);
// Gives back a block from allocate(): kept for reuse while the cache holds at
// most its limit, freed otherwise.
void release(void* block);
// Frees every cached block (live blocks are untouched).
void empty();
// Sets the most free memory kept; blocks over the new limit are freed at once.
void set_limit(size_t bytes);
Stats stats();

}  // namespace genesis::host_cache
