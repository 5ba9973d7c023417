// Runtime of the CUDA emulator: the "device memory" arena and the worker
// process that runs kernel launches.
//
// Device memory is one shared mapping of a memfd, made before the worker is
// forked, so parent and worker see the same bytes at the same addresses.
// Launches run in the worker: a kernel that writes through a wild pointer or
// overflows a fiber stack kills the worker, not the Python process, and the
// launcher reports the signal as an exception and forks a new worker.
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>

namespace {

struct Request {  // followed by nargs 8-byte argument slots
  uint64_t launch_fn;
  uint64_t thunk;
  uint32_t cfg[6];  // grid x, y, z, block x, y, z
  uint64_t shmem;
  int32_t order;
  int32_t nargs;
  uint64_t seed;
};
static_assert(sizeof(Request) == 64);

using LaunchFn = int (*)(void (*)(void**), const unsigned*, unsigned long long, int,
                         unsigned long long, void**, char*, int);

bool read_full(int fd, void* buf, size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n) {
    const ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool write_full(int fd, const void* buf, size_t n) {
  auto* p = static_cast<const char*>(buf);
  while (n) {
    const ssize_t r = write(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

[[noreturn]] void serve(int req, int resp) {
  constexpr int kMaxArgs = 256, kMsg = 4096;
  static uint64_t slots[kMaxArgs];
  static void* ptrs[kMaxArgs];
  static char msg[kMsg];
  for (;;) {
    Request r;
    if (!read_full(req, &r, sizeof r)) _exit(0);
    if (r.nargs < 0 || r.nargs > kMaxArgs || !read_full(req, slots, 8 * size_t(r.nargs))) _exit(2);
    for (int i = 0; i < r.nargs; ++i) ptrs[i] = &slots[i];
    msg[0] = 0;
    const auto fn = reinterpret_cast<LaunchFn>(r.launch_fn);
    const int32_t status = fn(reinterpret_cast<void (*)(void**)>(r.thunk), r.cfg, r.shmem, r.order,
                              r.seed, ptrs, msg, kMsg);
    const int32_t len = static_cast<int32_t>(strnlen(msg, kMsg));
    const int32_t head[2] = {status, len};
    if (!write_full(resp, head, sizeof head) || !write_full(resp, msg, size_t(len))) _exit(3);
  }
}

}  // namespace

extern "C" {

// Reserves `size` bytes of shared device memory; pages are only backed once touched.
void* genesis_emu_arena(unsigned long long size) {
  const int fd = memfd_create("genesis-cuda-emu", MFD_CLOEXEC);
  if (fd < 0) return nullptr;
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    close(fd);
    return nullptr;
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  close(fd);
  return p == MAP_FAILED ? nullptr : p;
}

// Returns the pages of a freed range to the system (they read as zeros afterwards).
int genesis_emu_release(void* p, unsigned long long n) { return madvise(p, n, MADV_REMOVE); }

// Forks the worker; it serves launch requests on `req` and answers on `resp`
// until `req` is closed.  Returns its pid (or -1) in the parent.
int genesis_emu_spawn(int req, int resp, int parent_req, int parent_resp) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Default dispositions: a crash must end the worker (the parent's fault
  // handlers, e.g. Python's faulthandler, would report it as its own).
  for (int sig : {SIGINT, SIGPIPE, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) signal(sig, SIG_DFL);
  close(parent_req);
  close(parent_resp);
  serve(req, resp);
}

}
