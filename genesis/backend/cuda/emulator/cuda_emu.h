// CUDA C++ mapped onto C++20 for the CPU, so the backend's .cu kernels run
// without a GPU (see docs/architecture.md, "CUDA backend").
//
// Execution model.  Blocks run one after another.  The threads of a block are
// fibers on one OS thread: a fiber runs until it reaches a barrier
// (__syncthreads), a warp collective (__shfl*_sync, __ballot_sync,
// __syncwarp) or its end, and then the next runnable fiber of the block runs.
// A barrier opens when every thread of the block waits at it; a warp
// collective completes when every lane of its mask has arrived.  Because a
// fiber is never preempted between two synchronisation points, a missing
// barrier shows up as a wrong result, and the order in which fibers (and
// blocks) are taken (forward, reverse, random) changes which one.  Deadlocks
// (no fiber can run), barrier divergence (threads exit or wait at another
// barrier while others wait) and misuse of warp masks stop the launch with a
// message that the Python launcher raises as an exception.
//
// Storage: threadIdx/blockIdx/blockDim/gridDim are per-fiber/per-launch
// thread-locals; `__shared__` variables are function statics (one block runs
// at a time, so a static is the block's storage); `extern __shared__` arrays
// are rewritten by the compiler driver to point at the launch's dynamic
// shared buffer, which is filled with 0xFF bytes (NaN, -1) before each block
// so reads of unwritten shared memory give visibly wrong values.
#pragma once
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if !defined(__x86_64__)
#error "the CUDA emulator's fiber switch is written for x86-64"
#endif

// ------------------------------------------------------------------ keywords
// The compiler driver preprocesses with GENESIS_EMU_SCAN to find kernels and
// `extern __shared__` arrays by these markers, then compiles the result.
#ifdef GENESIS_EMU_SCAN
#define __global__ __genesis_global__
#define __shared__ __genesis_shared__
#else
#define __global__
#define __shared__ static thread_local
#endif
#define __device__
#define __host__
#define __noinline__ __attribute__((noinline))
#define __forceinline__ inline __attribute__((always_inline))
#define __restrict__ __restrict
#define __align__(n) alignas(n)
#define __launch_bounds__(...)

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace genesis_emu {

enum State : int { kRunnable, kAtBarrier, kAtWarp, kExited };

struct Fiber {
  void* sp = nullptr;
  uint3 tid{0, 0, 0};
  int linear = 0;  // x + y * bx + z * bx * by, as CUDA numbers lanes
  State state = kRunnable;
  int line = 0;       // source line of the barrier or collective waited at
  int column = 0;     // and its column (two barriers may share a line)
  unsigned gen = 0;   // warp generation the fiber waits to see completed
  char* stack = nullptr;
};

// A warp collective in progress: lanes deposit values until all of `mask` arrived.
struct Warp {
  unsigned arrived = 0, mask = 0, gen = 0, lanes = 0;  // lanes: bits of existing lanes
  int kind = 0, line = 0;
  unsigned long long vals[32] = {};
  unsigned long long snap[2][32] = {};  // completed values, by generation parity
};

struct Launch {
  void (*thunk)(void**) = nullptr;
  void** args = nullptr;
  int nthreads = 0, live = 0, at_barrier = 0, exited = 0;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<int> order;
  void* sched_sp = nullptr;
  std::string error;
};

inline thread_local Fiber* current = nullptr;
inline thread_local Launch* launch = nullptr;
inline thread_local uint3 block_idx{0, 0, 0};
inline thread_local dim3 block_dim, grid_dim;
inline thread_local unsigned char* dynamic_smem = nullptr;

}  // namespace genesis_emu

#define threadIdx (::genesis_emu::current->tid)
#define blockIdx (::genesis_emu::block_idx)
#define blockDim (::genesis_emu::block_dim)
#define gridDim (::genesis_emu::grid_dim)
#define warpSize 32

namespace genesis_emu {

// swap(save, to): saves callee-saved registers and the FP control words on the
// current stack, stores its pointer in *save and resumes the context at `to`.
extern "C" void genesis_emu_swap(void** save, void* to);
extern "C" void genesis_emu_entry();
asm(R"(
  .text
  .hidden genesis_emu_swap
  .hidden genesis_emu_entry
  .globl genesis_emu_swap
  .globl genesis_emu_entry
genesis_emu_swap:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
genesis_emu_entry:
  movq %r12, %rdi
  callq *%r13
  ud2
)");

constexpr size_t kStack = 256 * 1024;  // per fiber; a guard page below catches overflow
constexpr size_t kPage = 4096;

[[noreturn]] inline void yield_to_scheduler_forever();

inline void switch_to_scheduler() {
  genesis_emu_swap(&current->sp, launch->sched_sp);
}

// Records the first error of the launch and parks the fiber for good.
[[noreturn]] inline void fail(const std::string& msg) {
  if (launch->error.empty()) launch->error = msg;
  current->state = kExited;
  yield_to_scheduler_forever();
}

[[noreturn]] inline void yield_to_scheduler_forever() {
  for (;;) switch_to_scheduler();
}

inline void fiber_main(Fiber* f) {
  launch->thunk(launch->args);
  f->state = kExited;
  --launch->live;
  ++launch->exited;
  yield_to_scheduler_forever();
}

inline void prepare(Fiber& f) {
  if (!f.stack) {
    void* p = mmap(nullptr, kStack + kPage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) {
      std::fprintf(stderr, "genesis cuda emulator: cannot map a fiber stack\n");
      std::abort();
    }
    mprotect(p, kPage, PROT_NONE);
    f.stack = static_cast<char*>(p);
  }
  // Initial frame popped by genesis_emu_swap: FP control words, r15, r14,
  // r13 (function), r12 (argument), rbx, rbp, then the return address.  The
  // slot above it is 16-byte aligned, so the call in genesis_emu_entry
  // enters fiber_main with the alignment the ABI requires.
  uintptr_t top = reinterpret_cast<uintptr_t>(f.stack + kPage + kStack) & ~uintptr_t(15);
  auto* s = reinterpret_cast<uint64_t*>(top) - 8;
  uint32_t mxcsr;
  uint16_t fpucw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpucw));
  s[0] = uint64_t(mxcsr) | (uint64_t(fpucw) << 32);
  s[1] = 0;                                             // r15
  s[2] = 0;                                             // r14
  s[3] = reinterpret_cast<uint64_t>(&fiber_main);       // r13
  s[4] = reinterpret_cast<uint64_t>(&f);                // r12
  s[5] = 0;                                             // rbx
  s[6] = 0;                                             // rbp
  s[7] = reinterpret_cast<uint64_t>(&genesis_emu_entry);  // return address
  f.sp = s;
  f.state = kRunnable;
  f.line = 0;
  f.gen = 0;
}

// ------------------------------------------------------------------ barriers
inline void syncthreads(int line, int column) {
  Fiber* f = current;
  f->state = kAtBarrier;
  f->line = line;
  f->column = column;
  ++launch->at_barrier;
  switch_to_scheduler();
}

inline const char* collective_name(int kind) {
  switch (kind) {
    case 1: return "__shfl_sync";
    case 2: return "__ballot_sync";
    case 3: return "__syncwarp";
    default: return "a warp collective";
  }
}

inline std::string hex(unsigned v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

// Deposits `bits` for the calling lane in a collective of `mask`; returns the
// completed values of every lane (indexed by lane).
inline const unsigned long long* collective(unsigned mask, unsigned long long bits, int kind,
                                            int line) {
  Fiber* f = current;
  Warp& w = launch->warps[f->linear / 32];
  const int lane = f->linear % 32;
  const unsigned me = 1u << lane;
  if (!(mask & me))
    fail(std::string(collective_name(kind)) + " at line " + std::to_string(line) + ": lane " +
         std::to_string(lane) + " is not in its own mask " + hex(mask));
  if (mask & ~w.lanes)
    fail(std::string(collective_name(kind)) + " at line " + std::to_string(line) + ": mask " +
         hex(mask) + " names lanes that do not exist in warp " + std::to_string(f->linear / 32) +
         " (lanes " + hex(w.lanes) + ")");
  if (w.arrived == 0) {
    w.mask = mask;
    w.kind = kind;
    w.line = line;
  } else if (w.mask != mask || w.kind != kind) {
    fail("warp divergence: lane " + std::to_string(lane) + " calls " + collective_name(kind) +
         " with mask " + hex(mask) + " at line " + std::to_string(line) + " while lanes " +
         hex(w.arrived) + " wait in " + collective_name(w.kind) + " with mask " + hex(w.mask) +
         " at line " + std::to_string(w.line));
  }
  w.vals[lane] = bits;
  w.arrived |= me;
  const unsigned gen = w.gen;
  if (w.arrived == w.mask) {
    std::memcpy(w.snap[gen & 1], w.vals, sizeof w.vals);
    ++w.gen;
    w.arrived = 0;
    const int base = (f->linear / 32) * 32;
    for (int l = 0; l < 32 && base + l < launch->nthreads; ++l) {
      Fiber& o = launch->fibers[base + l];
      if (o.state == kAtWarp && o.gen == gen) o.state = kRunnable;
    }
  } else {
    f->state = kAtWarp;
    f->line = line;
    f->gen = gen;
    switch_to_scheduler();
  }
  return w.snap[gen & 1];
}

template <class T>
inline unsigned long long to_bits(T v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffle of a type over 8 bytes");
  unsigned long long b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
inline T from_bits(unsigned long long b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

template <class T>
inline T shuffle_from(unsigned mask, T var, int src, int line) {
  const unsigned long long* all = collective(mask, to_bits(var), 1, line);
  if (!(mask & (1u << src)))
    fail("__shfl_sync at line " + std::to_string(line) + ": lane " +
         std::to_string(current->linear % 32) + " reads lane " + std::to_string(src) +
         ", which is not in the mask " + hex(mask));
  return from_bits<T>(all[src]);
}

// The scheduler of one block: runs fibers in launch->order until all exit.
inline bool run_block() {
  Launch& L = *launch;
  L.live = L.nthreads;
  L.at_barrier = 0;
  L.exited = 0;
  for (auto& w : L.warps) {
    w.arrived = 0;
    w.gen = 0;
  }
  for (int i = 0; i < L.nthreads; ++i) prepare(L.fibers[i]);
  for (;;) {
    bool ran = false;
    for (int i : L.order) {
      Fiber& f = L.fibers[i];
      if (f.state != kRunnable) continue;
      current = &f;
      genesis_emu_swap(&L.sched_sp, f.sp);
      ran = true;
      if (!L.error.empty()) return false;
    }
    if (L.live == 0) return true;
    if (L.at_barrier == L.live) {
      int line = -1, column = -1;
      for (auto& f : L.fibers) {
        if (f.state != kAtBarrier) continue;
        if (line < 0) line = f.line, column = f.column;
        if (f.line != line || f.column != column) {
          L.error = "barrier divergence: threads of block (" + std::to_string(block_idx.x) + ", " +
                    std::to_string(block_idx.y) + ", " + std::to_string(block_idx.z) +
                    ") wait at different __syncthreads (line " + std::to_string(line) + ":" +
                    std::to_string(column) + " and line " + std::to_string(f.line) + ":" +
                    std::to_string(f.column) + ")";
          return false;
        }
      }
      if (L.exited) {
        L.error = "barrier divergence: " + std::to_string(L.exited) + " of " +
                  std::to_string(L.nthreads) + " threads of block (" +
                  std::to_string(block_idx.x) + ", " + std::to_string(block_idx.y) + ", " +
                  std::to_string(block_idx.z) + ") exited while " + std::to_string(L.live) +
                  " wait at __syncthreads (line " + std::to_string(line) + ")";
        return false;
      }
      for (auto& f : L.fibers)
        if (f.state == kAtBarrier) f.state = kRunnable;
      L.at_barrier = 0;
      continue;
    }
    if (!ran) {
      int at_warp = 0, line_b = 0, line_w = 0;
      for (auto& f : L.fibers) {
        if (f.state == kAtWarp) ++at_warp, line_w = f.line;
        if (f.state == kAtBarrier) line_b = f.line;
      }
      L.error = "deadlock in block (" + std::to_string(block_idx.x) + ", " +
                std::to_string(block_idx.y) + ", " + std::to_string(block_idx.z) + "): " +
                std::to_string(L.at_barrier) + " threads wait at __syncthreads" +
                (L.at_barrier ? " (line " + std::to_string(line_b) + ")" : std::string()) + ", " +
                std::to_string(at_warp) + " in a warp collective" +
                (at_warp ? " (line " + std::to_string(line_w) + ")" : std::string()) + ", " +
                std::to_string(L.exited) + " exited";
      return false;
    }
  }
}

// Thread and block orders: 0 forward, 1 reverse, 2 random (seeded).
inline void ordered(std::vector<int>& v, int n, int order, std::mt19937_64& rng) {
  v.resize(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  if (order == 1) std::reverse(v.begin(), v.end());
  if (order == 2) std::shuffle(v.begin(), v.end(), rng);
}

constexpr size_t kMaxDynamicShared = 48 * 1024;  // without an opt-in attribute, as on sm_80/90

inline int run(void (*thunk)(void**), const unsigned* cfg, unsigned long long shmem, int order,
               unsigned long long seed, void** args, char* msg, int msglen) {
  auto report = [&](const std::string& s) {
    std::snprintf(msg, msglen, "%s", s.c_str());
    return 1;
  };
  const dim3 grid(cfg[0], cfg[1], cfg[2]), block(cfg[3], cfg[4], cfg[5]);
  const unsigned long long nthreads = 1ull * block.x * block.y * block.z;
  if (!grid.x || !grid.y || !grid.z || !nthreads)
    return report("invalid launch: grid and block dimensions must be positive");
  if (nthreads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
    return report("invalid launch: block (" + std::to_string(block.x) + ", " + std::to_string(block.y) +
                  ", " + std::to_string(block.z) + ") exceeds 1024 threads or a dimension limit");
  if (grid.y > 65535 || grid.z > 65535 || grid.x > 2147483647u)
    return report("invalid launch: grid dimension too large");
  if (shmem > kMaxDynamicShared)
    return report("invalid launch: " + std::to_string(shmem) +
                  " bytes of dynamic shared memory exceed the 49152-byte limit");
  static thread_local Launch L;
  static thread_local std::vector<unsigned char> smem;
  L.thunk = thunk;
  L.args = args;
  L.nthreads = static_cast<int>(nthreads);
  L.error.clear();
  if (L.fibers.size() < nthreads) L.fibers.resize(nthreads);
  L.warps.assign((nthreads + 31) / 32, Warp{});
  for (size_t w = 0; w < L.warps.size(); ++w) {
    const unsigned n = static_cast<unsigned>(std::min<unsigned long long>(32, nthreads - 32 * w));
    L.warps[w].lanes = n == 32 ? 0xffffffffu : ((1u << n) - 1);
  }
  for (unsigned z = 0, i = 0; z < block.z; ++z)
    for (unsigned y = 0; y < block.y; ++y)
      for (unsigned x = 0; x < block.x; ++x, ++i) {
        L.fibers[i].tid = {x, y, z};
        L.fibers[i].linear = static_cast<int>(i);
      }
  smem.resize(std::max<size_t>(shmem, 16));
  std::mt19937_64 rng(seed);
  const unsigned long long nblocks = 1ull * grid.x * grid.y * grid.z;
  std::vector<unsigned long long> blocks(nblocks);
  for (unsigned long long b = 0; b < nblocks; ++b) blocks[b] = b;
  if (order == 1) std::reverse(blocks.begin(), blocks.end());
  if (order == 2) std::shuffle(blocks.begin(), blocks.end(), rng);
  Launch* saved_launch = launch;
  launch = &L;
  grid_dim = grid;
  block_dim = block;
  dynamic_smem = smem.data();
  bool ok = true;
  for (unsigned long long b : blocks) {
    block_idx = {static_cast<unsigned>(b % grid.x), static_cast<unsigned>(b / grid.x % grid.y),
                 static_cast<unsigned>(b / grid.x / grid.y)};
    ordered(L.order, L.nthreads, order, rng);
    std::memset(smem.data(), 0xFF, smem.size());
    if (!(ok = run_block())) break;
  }
  launch = saved_launch;
  current = nullptr;
  if (!ok) return report(L.error);
  return 0;
}

// ------------------------------------------------------------------ thunks
// Parameter type codes the Python launcher checks arguments against:
// "p:" + element code for pointers, the element code for scalars.
template <class T>
constexpr const char* code() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, float>) return "f4";
  else if constexpr (std::is_same_v<U, double>) return "f8";
  else if constexpr (std::is_same_v<U, bool> || std::is_same_v<U, unsigned char>) return "b1";
  else if constexpr (std::is_integral_v<U> && std::is_signed_v<U> && sizeof(U) == 4) return "i4";
  else if constexpr (std::is_integral_v<U> && std::is_signed_v<U> && sizeof(U) == 8) return "i8";
  else if constexpr (std::is_integral_v<U> && std::is_unsigned_v<U> && sizeof(U) == 4) return "u4";
  else if constexpr (std::is_integral_v<U> && std::is_unsigned_v<U> && sizeof(U) == 8) return "u8";
  else static_assert(sizeof(U) == 0, "kernel parameter of a type the launcher cannot pass");
}

template <class P>
std::string param_code() {
  using U = std::remove_cv_t<P>;
  if constexpr (std::is_pointer_v<U>) return std::string("p:") + code<std::remove_pointer_t<U>>();
  else return code<U>();
}

template <class... P>
const char* signature(void (*)(P...)) {
  static const std::string s = [] {
    std::string r;
    ((r += (r.empty() ? "" : ","), r += param_code<P>()), ...);
    return r;
  }();
  return s.c_str();
}

template <class... P, size_t... I>
void invoke(void (*f)(P...), void** a, std::index_sequence<I...>) {
  f(*static_cast<std::remove_cv_t<P>*>(a[I])...);
}
template <class... P>
void invoke(void (*f)(P...), void** a) {
  invoke(f, a, std::index_sequence_for<P...>{});
}

}  // namespace genesis_emu

extern "C" int genesis_emu_launch(void (*thunk)(void**), const unsigned* cfg,
                                  unsigned long long shmem, int order, unsigned long long seed,
                                  void** args, char* msg, int msglen) {
  return ::genesis_emu::run(thunk, cfg, shmem, order, seed, args, msg, msglen);
}

// ------------------------------------------------------------------ CUDA API
inline void __syncthreads(std::source_location at = std::source_location::current()) {
  ::genesis_emu::syncthreads(static_cast<int>(at.line()), static_cast<int>(at.column()));
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

inline void __syncwarp(unsigned mask = 0xffffffffu, int line = __builtin_LINE()) {
  ::genesis_emu::collective(mask, 0, 3, line);
}
inline unsigned __ballot_sync(unsigned mask, int pred, int line = __builtin_LINE()) {
  const unsigned long long* all = ::genesis_emu::collective(mask, pred != 0, 2, line);
  unsigned r = 0;
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1) && all[l]) r |= 1u << l;
  return r;
}
inline int __any_sync(unsigned mask, int pred, int line = __builtin_LINE()) {
  return __ballot_sync(mask, pred, line) != 0;
}
inline int __all_sync(unsigned mask, int pred, int line = __builtin_LINE()) {
  return __ballot_sync(mask, pred, line) == mask;
}
template <class T>
inline T __shfl_sync(unsigned mask, T var, int src, int width = 32, int line = __builtin_LINE()) {
  const int lane = ::genesis_emu::current->linear % 32;
  return ::genesis_emu::shuffle_from(mask, var, (lane & ~(width - 1)) + (src & (width - 1)), line);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32,
                          int line = __builtin_LINE()) {
  const int lane = ::genesis_emu::current->linear % 32;
  const int src = lane + static_cast<int>(delta);
  const bool inside = (src & ~(width - 1)) == (lane & ~(width - 1)) && src < 32;
  return ::genesis_emu::shuffle_from(mask, var, inside ? src : lane, line);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32,
                        int line = __builtin_LINE()) {
  const int lane = ::genesis_emu::current->linear % 32;
  const int src = lane - static_cast<int>(delta);
  const bool inside = src >= (lane & ~(width - 1));
  return ::genesis_emu::shuffle_from(mask, var, inside ? src : lane, line);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32,
                         int line = __builtin_LINE()) {
  const int lane = ::genesis_emu::current->linear % 32;
  const int src = lane ^ lane_mask;
  const bool inside = (src & ~(width - 1)) == (lane & ~(width - 1)) && src < 32;
  return ::genesis_emu::shuffle_from(mask, var, inside ? src : lane, line);
}

// Atomics through std::atomic_ref; each returns the old value, as in CUDA.
template <class T>
inline T genesis_emu_cas_update(T* p, T v, bool is_max) {
  std::atomic_ref<T> r(*p);
  T old = r.load();
  while ((is_max ? v > old : v < old) && !r.compare_exchange_weak(old, v)) {
  }
  return old;
}
#define GENESIS_EMU_ATOMICS(T)                                                        \
  inline T atomicAdd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }      \
  inline T atomicExch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v); }
GENESIS_EMU_ATOMICS(int)
GENESIS_EMU_ATOMICS(unsigned int)
GENESIS_EMU_ATOMICS(unsigned long long)
GENESIS_EMU_ATOMICS(float)
GENESIS_EMU_ATOMICS(double)
#undef GENESIS_EMU_ATOMICS
#define GENESIS_EMU_ATOMIC_EXTREMES(T)                                                  \
  inline T atomicMax(T* p, T v) { return genesis_emu_cas_update(p, v, true); }          \
  inline T atomicMin(T* p, T v) { return genesis_emu_cas_update(p, v, false); }         \
  inline T atomicCAS(T* p, T expected, T v) {                                           \
    std::atomic_ref<T>(*p).compare_exchange_strong(expected, v);                        \
    return expected;                                                                    \
  }
GENESIS_EMU_ATOMIC_EXTREMES(int)
GENESIS_EMU_ATOMIC_EXTREMES(unsigned int)
GENESIS_EMU_ATOMIC_EXTREMES(long long)
GENESIS_EMU_ATOMIC_EXTREMES(unsigned long long)
#undef GENESIS_EMU_ATOMIC_EXTREMES

// Bit casts and math functions CUDA provides that the C library does not.
inline float __int_as_float(int v) { return std::bit_cast<float>(v); }
inline int __float_as_int(float v) { return std::bit_cast<int>(v); }
inline double __longlong_as_double(long long v) { return std::bit_cast<double>(v); }
inline long long __double_as_longlong(double v) { return std::bit_cast<long long>(v); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline int __clz(int v) { return v ? __builtin_clz(static_cast<unsigned>(v)) : 32; }
