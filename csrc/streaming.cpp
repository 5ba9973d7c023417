// Streaming-store threshold (contract in streaming.h).
#include "streaming.h"

#include <atomic>
#include <cstdio>

namespace genesis::streaming {
namespace {

// From sysfs ("32768K"): sysconf can report the sum over every cache of the package
// instead (384 MiB for twelve 32 MiB L3s).  32 MiB where sysfs says nothing.
int64_t last_level_cache_bytes() {
  int64_t kib = 0;
  if (FILE* f = std::fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r")) {
    long v = 0;
    char unit = 'K';
    if (std::fscanf(f, "%ld%c", &v, &unit) >= 1 && v > 0) kib = unit == 'M' ? v << 10 : v;
    std::fclose(f);
  }
  return (kib > 0 ? kib : 32 << 10) << 10;
}

std::atomic<int64_t>& threshold() {
  static std::atomic<int64_t> t{last_level_cache_bytes()};
  return t;
}

}  // namespace

int64_t min_bytes() { return threshold().load(std::memory_order_relaxed); }
void set_min_bytes(int64_t bytes) { threshold().store(bytes, std::memory_order_relaxed); }

}  // namespace genesis::streaming
