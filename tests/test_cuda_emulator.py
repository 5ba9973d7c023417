"""The CUDA emulator, feature by feature: barriers, shared memory, warp collectives,
atomics, argument checks, deadlock and divergence reports, thread orders, crash
isolation; and the proof that it catches a missing __syncthreads."""
import numpy as np
import pytest

from genesis.backend.cuda import emulator as E

ORDERS = [("forward", 0), ("reverse", 0), ("random", 1), ("random", 2)]


def _mod(code):
    return E.Module(code=code, name="test.cu")


# ------------------------------------------------------------------ barriers and shared memory
SHARED = r"""
extern "C" __global__ void reverse_static(const float* x, float* y) {
  __shared__ float s[64];
  const int t = threadIdx.x, b = blockIdx.x * 64;
  s[t] = x[b + t];
  __syncthreads();
  y[b + t] = s[63 - t];
}
extern "C" __global__ void reverse_dynamic(const double* x, double* y, int n) {
  extern __shared__ double s[];
  const int t = threadIdx.x;
  s[t] = x[blockIdx.x * n + t];
  __syncthreads();
  y[blockIdx.x * n + t] = s[n - 1 - t];
}
extern "C" __global__ void dims(int* out) {
  const int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int nt = blockDim.x * blockDim.y * blockDim.z;
  out[b * nt + t] = b * 1000 + t;
}
"""


@pytest.mark.parametrize("order,seed", ORDERS)
def test_barrier_and_static_shared_memory(order, seed):
    k = _mod(SHARED).get_function("reverse_static")
    x = E.to_device(np.arange(256, dtype=np.float32))
    y = E.empty((256,), np.float32)
    with E.thread_order(order, seed):
        k((4,), (64,), (x, y))
    np.testing.assert_array_equal(y, np.arange(256, dtype=np.float32).reshape(4, 64)[:, ::-1].ravel())


@pytest.mark.parametrize("order,seed", ORDERS)
def test_dynamic_shared_memory(order, seed):
    k = _mod(SHARED).get_function("reverse_dynamic")
    x = E.to_device(np.arange(3 * 40, dtype=np.float64))
    y = E.empty((120,), np.float64)
    with E.thread_order(order, seed):
        k((3,), (40,), (x, y, np.int32(40)), shared_mem=40 * 8)
    np.testing.assert_array_equal(y, np.arange(120.0).reshape(3, 40)[:, ::-1].ravel())


def test_dynamic_shared_memory_limit():
    k = _mod(SHARED).get_function("reverse_dynamic")
    x = E.empty((64,), np.float64)
    with pytest.raises(E.KernelError, match="49152"):
        k((1,), (32,), (x, x, np.int32(32)), shared_mem=64 * 1024)


def test_three_dimensional_grid_and_block():
    k = _mod(SHARED).get_function("dims")
    out = E.empty((2 * 3 * 2 * 4 * 2 * 3,), np.int32)
    k((2, 3, 2), (4, 2, 3), (out,))
    b, t = np.divmod(np.arange(out.size), 24)
    np.testing.assert_array_equal(out, b * 1000 + t)


# ------------------------------------------------------------------ warp collectives
WARP = r"""
extern "C" __global__ void shuffles(const int* x, int* out) {
  const int t = threadIdx.x, v = x[t];
  int down = v;
  for (int o = 16; o > 0; o >>= 1) down += __shfl_down_sync(0xffffffffu, down, o);
  int xr = v;
  for (int o = 16; o > 0; o >>= 1) xr += __shfl_xor_sync(0xffffffffu, xr, o);
  int up = v;
  for (int o = 1; o < 32; o <<= 1) {
    const int w = __shfl_up_sync(0xffffffffu, up, o);
    if (t % 32 >= o) up += w;
  }
  out[4 * t + 0] = down;                                   // lane 0: warp sum
  out[4 * t + 1] = xr;                                     // every lane: warp sum
  out[4 * t + 2] = up;                                     // inclusive scan
  out[4 * t + 3] = __shfl_sync(0xffffffffu, v, 5, 8);      // lane 5 of each group of 8
}
extern "C" __global__ void shuffle_double(const double* x, double* out) {
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, x[threadIdx.x], 1);
}
extern "C" __global__ void ballot(const int* x, unsigned* out) {
  const unsigned b = __ballot_sync(0xffffffffu, x[threadIdx.x] > 0);
  if (threadIdx.x % 32 == 0) out[threadIdx.x / 32] = b;
}
extern "C" __global__ void partial_warp(int* out) {
  // 40 threads: the second warp has 8 lanes, so its mask is 0xff
  const unsigned mask = threadIdx.x < 32 ? 0xffffffffu : 0xffu;
  out[threadIdx.x] = __shfl_sync(mask, (int)threadIdx.x, 0);
}
"""


@pytest.mark.parametrize("order,seed", ORDERS)
def test_shuffles(order, seed):
    x = np.random.default_rng(0).integers(-50, 50, 64).astype(np.int32)
    out = E.empty((64 * 4,), np.int32)
    with E.thread_order(order, seed):
        _mod(WARP).get_function("shuffles")((1,), (64,), (E.to_device(x), out))
    out = out.reshape(64, 4)
    w = x.reshape(2, 32)
    assert out[0, 0] == w[0].sum() and out[32, 0] == w[1].sum()
    np.testing.assert_array_equal(out[:, 1], np.repeat(w.sum(1), 32))
    np.testing.assert_array_equal(out[:, 2], np.cumsum(w, axis=1).ravel())
    np.testing.assert_array_equal(out[:, 3], np.repeat(x.reshape(8, 8)[:, 5], 8))


def test_shuffle_of_doubles():
    x = np.arange(32, dtype=np.float64) * 0.5
    out = E.empty((32,), np.float64)
    _mod(WARP).get_function("shuffle_double")((1,), (32,), (E.to_device(x), out))
    np.testing.assert_array_equal(out, x[np.arange(32) ^ 1])


def test_ballot():
    x = np.random.default_rng(1).integers(-1, 2, 64).astype(np.int32)
    out = E.empty((2,), np.uint32)
    _mod(WARP).get_function("ballot")((1,), (64,), (E.to_device(x), out))
    for w in range(2):
        assert int(out[w]) == sum(1 << i for i in range(32) if x[32 * w + i] > 0)


def test_partial_warp_masks():
    out = E.empty((40,), np.int32)
    _mod(WARP).get_function("partial_warp")((1,), (40,), (out,))
    np.testing.assert_array_equal(out, [0] * 32 + [32] * 8)


# ------------------------------------------------------------------ atomics
ATOMICS = r"""
extern "C" __global__ void atomics(int* i, unsigned* u, unsigned long long* ull, float* f,
                                   double* d, long long* mx) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(i, 1);
  atomicAdd(u, 2u);
  atomicAdd(ull, 3ull);
  atomicAdd(f, 0.5f);
  atomicAdd(d, 0.25);
  atomicMax(&i[1], t);
  atomicMin(&i[2], -t);
  atomicMax(&mx[0], (long long)t * 10000000000LL);
  atomicMin(&mx[1], -(long long)t);
  atomicMax(&u[1], (unsigned)t);
  if (atomicCAS(&i[3], 0, t + 1) == 0) atomicAdd(&i[4], 1);  // exactly one thread wins
  atomicExch(&i[5], 7);
}
"""


@pytest.mark.parametrize("order,seed", ORDERS[:2])
def test_atomics_on_each_type(order, seed):
    i = E.to_device(np.zeros(6, np.int32))
    u = E.to_device(np.zeros(2, np.uint32))
    ull = E.to_device(np.zeros(1, np.uint64))
    f = E.to_device(np.zeros(1, np.float32))
    d = E.to_device(np.zeros(1, np.float64))
    mx = E.to_device(np.zeros(2, np.int64))
    with E.thread_order(order, seed):
        _mod(ATOMICS).get_function("atomics")((3,), (96,), (i, u, ull, f, d, mx))
    n = 3 * 96
    assert list(i[:3]) == [n, n - 1, -(n - 1)] and i[4] == 1 and 1 <= i[3] <= n and i[5] == 7
    assert list(u) == [2 * n, n - 1] and ull[0] == 3 * n
    assert f[0] == 0.5 * n and d[0] == 0.25 * n
    assert list(mx) == [(n - 1) * 10000000000, -(n - 1)]


# ------------------------------------------------------------------ argument checks
def test_argument_types_are_checked():
    k = _mod(SHARED).get_function("reverse_dynamic")
    assert k.signature == ("p:f8", "p:f8", "i4")
    x = E.empty((32,), np.float64)
    with pytest.raises(TypeError, match=r"argument 2 \(int\) must be np.int32, got int"):
        k(1, 32, (x, x, 32))
    with pytest.raises(TypeError, match=r"argument 2 \(int\) must be np.int32, got int64"):
        k(1, 32, (x, x, np.int64(32)))
    with pytest.raises(TypeError, match=r"argument 0 \(double\*\) must be a float64 array, got float32"):
        k(1, 32, (E.empty((32,), np.float32), x, np.int32(32)))
    with pytest.raises(TypeError, match="not in device memory"):
        k(1, 32, (np.zeros(32), x, np.int32(32)))
    with pytest.raises(TypeError, match="takes 3 arguments"):
        k(1, 32, (x, x))
    with pytest.raises(E.KernelError, match="1024 threads"):
        k(1, 2048, (x, x, np.int32(32)))


# ------------------------------------------------------------------ deadlock and divergence
BROKEN = r"""
extern "C" __global__ void early_exit(float* x) {
  if (threadIdx.x == 3) return;
  __syncthreads();
  x[threadIdx.x] = 1;
}
extern "C" __global__ void two_barriers(float* x) {
  if (threadIdx.x < 16) { __syncthreads(); } else { __syncthreads(); }
  x[threadIdx.x] = 1;
}
extern "C" __global__ void barrier_vs_shuffle(float* x) {
  float v = x[threadIdx.x];
  if (threadIdx.x < 16) __syncthreads();
  else v = __shfl_sync(0xffffffffu, v, 0);
  x[threadIdx.x] = v;
}
extern "C" __global__ void shuffle_after_exit(float* x) {
  if (threadIdx.x == 0) return;
  x[threadIdx.x] = __shfl_sync(0xffffffffu, x[threadIdx.x], 1);
}
extern "C" __global__ void mask_mismatch(float* x) {
  const unsigned m = threadIdx.x < 16 ? 0xffffffffu : 0xffff0000u;
  x[threadIdx.x] = __shfl_sync(m, x[threadIdx.x], 16);
}
extern "C" __global__ void wild_write(float* x) {
  if (threadIdx.x == 5) *(volatile float*)(16) = 1.0f;
}
extern "C" __global__ void spin(volatile int* flag) {
  if (threadIdx.x == 0) { while (flag[0] == 0) {} }
  else if (threadIdx.x == 1) { flag[0] = 1; }
}
"""


def _x(n=64):
    return E.to_device(np.zeros(n, np.float32))


def test_exit_while_others_wait_is_barrier_divergence():
    with pytest.raises(E.BarrierDivergenceError, match="1 of 64 threads .* exited while 63 wait"):
        _mod(BROKEN).get_function("early_exit")(1, 64, (_x(),))


def test_different_barriers_are_divergence():
    with pytest.raises(E.BarrierDivergenceError, match="different __syncthreads"):
        _mod(BROKEN).get_function("two_barriers")(1, 32, (_x(),))


def test_deadlock_is_reported():
    with pytest.raises(E.DeadlockError, match="16 threads wait at __syncthreads.*16 in a warp"):
        _mod(BROKEN).get_function("barrier_vs_shuffle")(1, 32, (_x(),))
    with pytest.raises(E.DeadlockError, match="1 exited"):
        _mod(BROKEN).get_function("shuffle_after_exit")(1, 32, (_x(),))


def test_warp_mask_mismatch():
    with pytest.raises(E.KernelError, match="warp divergence"):
        _mod(BROKEN).get_function("mask_mismatch")(1, 32, (_x(),))


def test_memory_error_fails_the_launch_not_the_process():
    m = _mod(BROKEN)
    with pytest.raises(E.KernelCrash, match="SIGSEGV"):
        m.get_function("wild_write")(1, 32, (_x(),))
    x = E.to_device(np.arange(32.0))
    y = E.empty((32,), np.float64)
    _mod(SHARED).get_function("reverse_dynamic")(1, 32, (x, y, np.int32(32)), shared_mem=256)
    np.testing.assert_array_equal(y, np.arange(32.0)[::-1])


def test_spin_wait_times_out():
    flag = E.to_device(np.zeros(1, np.int32))
    with pytest.raises(E.KernelTimeout, match="did not finish"):
        _mod(BROKEN).get_function("spin")(1, 32, (flag,), timeout=2)


# ------------------------------------------------------------------ thread orders
ORDER = r"""
extern "C" __global__ void tickets(int* counter, int* out) {
  out[blockIdx.x * blockDim.x + threadIdx.x] = atomicAdd(counter, 1);
}
"""


def _tickets(order, seed=0):
    counter = E.to_device(np.zeros(1, np.int32))
    out = E.empty((2 * 32,), np.int32)
    with E.thread_order(order, seed):
        _mod(ORDER).get_function("tickets")(2, 32, (counter, out))
    return np.array(out)


def test_thread_orders():
    np.testing.assert_array_equal(_tickets("forward"), np.arange(64))
    np.testing.assert_array_equal(_tickets("reverse"), np.arange(64)[::-1])
    r1, r2 = _tickets("random", 1), _tickets("random", 2)
    for r in (r1, r2):
        assert sorted(r) == list(range(64))
        assert not np.array_equal(r, np.arange(64)) and not np.array_equal(r, np.arange(64)[::-1])
    assert not np.array_equal(r1, r2)
    np.testing.assert_array_equal(_tickets("random", 1), r1)  # seeded: reproducible
    with pytest.raises(ValueError, match="forward, reverse or random"):
        E.set_thread_order("sideways")


def test_thread_order_from_the_environment():
    import os
    import subprocess
    import sys
    code = "from genesis.backend.cuda import emulator as E; print(E.get_thread_order())"
    env = dict(os.environ, GENESIS_CUDA_EMULATE_ORDER="random:5")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.stdout.strip() == "('random', 5)", r.stderr


# ------------------------------------------------------------------ the proof
TILED = r"""
#define TILE 16
// C[M, N] = A[M, K] @ B[K, N], row-major; one thread per element of C.
extern "C" __global__ void matmul(const float* A, const float* B, float* C, int M, int N, int K) {
  __shared__ float As[TILE][TILE];
  __shared__ float Bs[TILE][TILE];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
  float acc = 0.0f;
  for (int k0 = 0; k0 < K; k0 += TILE) {
    As[ty][tx] = (row < M && k0 + tx < K) ? A[row * K + k0 + tx] : 0.0f;
    Bs[ty][tx] = (k0 + ty < K && col < N) ? B[(k0 + ty) * N + col] : 0.0f;
    SYNC_AFTER_LOAD;
    for (int k = 0; k < TILE; ++k) acc += As[ty][k] * Bs[k][tx];
    SYNC_AFTER_USE;
  }
  if (row < M && col < N) C[row * N + col] = acc;
}
"""


def _tiled(after_load=True, after_use=True):
    defs = (f"#define SYNC_AFTER_LOAD {'__syncthreads()' if after_load else ''}\n"
            f"#define SYNC_AFTER_USE {'__syncthreads()' if after_use else ''}\n")
    return _mod(defs + TILED).get_function("matmul")


def _run_tiled(kernel, order, seed=0):
    rng = np.random.default_rng(3)
    M, N, K = 37, 29, 70
    a, b = rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal((K, N)).astype(np.float32)
    c = E.empty((M, N), np.float32)
    with E.thread_order(order, seed):
        kernel(((N + 15) // 16, (M + 15) // 16), (16, 16),
               (E.to_device(a), E.to_device(b), c, np.int32(M), np.int32(N), np.int32(K)))
    return np.allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("order,seed", ORDERS)
def test_correct_tiled_kernel_is_right_in_every_order(order, seed):
    assert _run_tiled(_tiled(), order, seed)


@pytest.mark.parametrize("missing", ["after_load", "after_use"])
@pytest.mark.parametrize("order,seed", ORDERS)
def test_a_missing_syncthreads_gives_a_wrong_result(missing, order, seed):
    broken = _tiled(after_load=missing != "after_load", after_use=missing != "after_use")
    assert not _run_tiled(broken, order, seed)
