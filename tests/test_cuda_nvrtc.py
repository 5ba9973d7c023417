"""Every CUDA kernel file compiles for the GPU: with NVRTC (the compiler CuPy uses at
run time, stricter than nvcc) for sm_80 and sm_90, and with nvcc where it is installed.
NVRTC comes from PyPI (`nvidia-cuda-nvrtc`, driven through `cuda-bindings`, both in
the `test` extra) and needs no GPU.  Set GENESIS_SKIP_NVRTC=1 only on a machine that
cannot install them; otherwise a missing toolchain fails these tests."""
import os
import re
import shutil
import subprocess

import pytest

from genesis import _C
from genesis.backend.cuda import emulator
from genesis.backend.cuda import FAMILIES, KERNEL_DIR

ARCHS = ("sm_80", "sm_90")

if os.environ.get("GENESIS_SKIP_NVRTC") == "1":
    pytest.skip("GENESIS_SKIP_NVRTC=1: the NVRTC toolchain is declared unavailable",
                allow_module_level=True)


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError as e:
        pytest.fail(f"NVRTC is not installed ({e}): pip install 'genesis-autograd[test]' "
                    "(cuda-bindings and nvidia-cuda-nvrtc), or set GENESIS_SKIP_NVRTC=1")
    return nvrtc


def _check(nvrtc, result, what):
    err = result[0] if isinstance(result, tuple) else result
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, f"{what}: {err}"
    return result[1:] if isinstance(result, tuple) else ()


def nvrtc_compile(source, name, arch):
    """(ptx, log) of `source` compiled by NVRTC for `arch`."""
    nvrtc = _nvrtc()
    (prog,) = _check(nvrtc, nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], []),
                     "nvrtcCreateProgram")
    try:
        opts = [f"--gpu-architecture={arch}".encode(), b"-std=c++17",
                f"--include-path={KERNEL_DIR}".encode()]
        status = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        (size,) = _check(nvrtc, nvrtc.nvrtcGetProgramLogSize(prog), "log size")
        log = b" " * size
        _check(nvrtc, nvrtc.nvrtcGetProgramLog(prog, log), "log")
        log = log.decode(errors="replace").rstrip("\0 \n")
        assert status[0] == nvrtc.nvrtcResult.NVRTC_SUCCESS, f"NVRTC rejected {name} ({arch}):\n{log}"
        (size,) = _check(nvrtc, nvrtc.nvrtcGetPTXSize(prog), "ptx size")
        ptx = b" " * size
        _check(nvrtc, nvrtc.nvrtcGetPTX(prog, ptx), "ptx")
        return ptx.decode(errors="replace"), log
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def test_every_family_has_a_kernel_file():
    assert set(FAMILIES) >= {"elementwise", "reduce", "gemm", "index"}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("family", FAMILIES)
def test_nvrtc_compiles(family, arch):
    ptx, log = nvrtc_compile((KERNEL_DIR / f"{family}.cu").read_text(), f"{family}.cu", arch)
    assert "warning" not in log.lower(), log
    entries = set(re.findall(r"\.entry\s+(\w+)", ptx))
    # the GPU build and the emulator see the same kernels
    assert entries == set(emulator.Module(path=KERNEL_DIR / f"{family}.cu").kernels)


def test_nvrtc_rejects_what_nvcc_accepts():
    """The check is real: NVRTC has no INFINITY macro (nvcc's math headers do)."""
    with pytest.raises(AssertionError, match="INFINITY"):
        nvrtc_compile('extern "C" __global__ void k(float* x) { x[0] = INFINITY; }', "inf.cu",
                      "sm_80")


@pytest.mark.skipif(shutil.which("nvcc") is None,
                    reason="nvcc is optional (NVRTC above is the required check)")
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("family", FAMILIES)
def test_nvcc_compiles(family, arch, tmp_path):
    r = subprocess.run(["nvcc", f"-arch={arch}", "-std=c++17", "--ptx", "-Werror",
                        "all-warnings", f"-I{KERNEL_DIR}", str(KERNEL_DIR / f"{family}.cu"),
                        "-o", str(tmp_path / f"{family}.ptx")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _enum(family, name):
    text = (KERNEL_DIR / f"{family}.cu").read_text()
    body = re.search(r"enum\s+" + name + r"\s*\{([^}]*)\}", text).group(1)
    return [re.sub(r"^[A-Z]_", "", item.strip()) for item in body.split(",") if item.strip()]


def test_op_codes_match_the_cpu_kernels():
    for family, enum, table in (("elementwise", "UnaryOp", _C.UNARY_OPS),
                                ("elementwise", "BinaryOp", _C.BINARY_OPS),
                                ("reduce", "ReduceOp", _C.REDUCE_OPS)):
        assert _enum(family, enum) == sorted(table, key=table.get), (family, enum)
