// Host block cache (contract in host_cache.h).
//
// Sizes are rounded up to one of four classes per power of two (at most 25 %
// more than asked), so outputs of nearly the same size share blocks, and a
// block is reused only for its own class.  Each block carries its class in a
// 64-byte header in front of the memory handed out, so release needs no size.
#include "host_cache.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace genesis::host_cache {
namespace {

// The memory handed out starts on a page.  An output at a small positive distance
// (mod 4 KiB) past its input makes the input's loads wait on the output's pending
// stores (the CPU compares only address bits 0-11), and numpy's large arrays start
// 16 bytes into a page: a 64-byte header after a 64-byte aligned malloc put every
// cached output 112 bytes past such an input, which slowed a streamed exp by 1.6x.
// Page-aligned, an output lies at most 16 bytes before such inputs, and level with
// cached ones: never behind the loads that follow it.
constexpr size_t kHeader = 4096;
// Blocks from this size on ask for transparent huge pages (as numpy does for its
// arrays): streaming kernels then take one TLB miss per 2 MiB instead of per 4 KiB,
// and a new block faults in 2 MiB at a time.
constexpr size_t kHugePageBlock = size_t(4) << 20;

void advise_huge_pages(void* p, size_t bytes) {
  const uintptr_t page = 4096;
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(page - 1);
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE);  // advice only
}

struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // class -> headers
  Stats stats{0, 0, size_t(1) << 30, 0, 0};
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: arrays may be freed at interpreter exit
  return *c;
}

size_t size_class(size_t bytes) {
  if (bytes <= 4096) return 4096;
  const int top = 63 - __builtin_clzll(bytes - 1);  // 2^top < bytes <= 2^(top + 1)
  const size_t step = size_t(1) << (top - 2);       // a quarter of 2^top
  return (bytes + step - 1) / step * step;
}

size_t& class_of(void* header) { return *static_cast<size_t*>(header); }

// Frees cached blocks until at most `keep` bytes stay; the caller holds the mutex.
void trim(Cache& c, size_t keep) {
  for (auto& [cls, blocks] : c.free_blocks)
    while (c.stats.cached_bytes > keep && !blocks.empty()) {
      std::free(blocks.back());
      blocks.pop_back();
      c.stats.cached_bytes -= cls;
    }
}

}  // namespace

void* allocate(size_t bytes) {
  if (bytes > SIZE_MAX - kHeader - 4096) throw std::bad_alloc();
  const size_t cls = size_class(bytes);
  Cache& c = cache();
  void* header = nullptr;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(cls);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      header = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= cls;
      ++c.stats.hits;
    } else {
      ++c.stats.misses;
    }
    c.stats.live_bytes += cls;
  }
  if (!header) {
    header = std::aligned_alloc(kHeader, kHeader + cls);
    if (!header) {
      std::lock_guard<std::mutex> lock(c.mutex);
      c.stats.live_bytes -= cls;
      throw std::bad_alloc();
    }
    class_of(header) = cls;
    if (cls >= kHugePageBlock) advise_huge_pages(header, kHeader + cls);
  }
  return static_cast<char*>(header) + kHeader;
}

void release(void* block) {
  if (!block) return;
  void* header = static_cast<char*>(block) - kHeader;
  const size_t cls = class_of(header);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    c.stats.live_bytes -= cls;
    if (c.stats.cached_bytes + cls <= c.stats.limit) {
      c.free_blocks[cls].push_back(header);
      c.stats.cached_bytes += cls;
      return;
    }
  }
  std::free(header);
}

void empty() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  trim(c, 0);
}

void set_limit(size_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.limit = bytes;
  trim(c, bytes);
}

Stats stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

}  // namespace genesis::host_cache
