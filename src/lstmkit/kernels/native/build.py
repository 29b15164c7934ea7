"""Compiling the native kernel at first use, into a cache that an edit or a new torch invalidates.

The extension is built by torch.utils.cpp_extension.load (ninja and the system C++
compiler) from the .cpp files beside this one, which include the .h files there.
Nothing is installed and no package is resolved: the build uses the torch already
imported. The build directory is keyed by a hash of every source and header, the flags,
the torch version and the CPU's vector capability, under $LSTMKIT_CACHE (default
~/.cache/lstmkit).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from types import ModuleType

import torch

from lstmkit.io.files import cache_root

DIRECTORY = Path(__file__).parent
SOURCES = sorted(DIRECTORY.glob("*.cpp"))  # the translation units
HEADERS = sorted(DIRECTORY.glob("*.h"))


class NativeBuildError(RuntimeError):
    """The kernel cannot be built here; the message says why and how to fix it."""


def compiler_flags() -> list[str]:
    # -ffast-math (compile only, never linked: it would set flush-to-zero for the whole
    # process) lets GCC call glibc's vector exp and tanh, so the gate loops vectorise;
    # -fopenmp turns at::parallel_for's pragmas on (torch's own libgomp serves them).
    flags = ["-O3", "-ffast-math", "-fopenmp"]
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
    return flags


def build_key() -> str:
    """Hash of what changes the binary: every source and header, flags, torch, CPU capability."""
    digest = hashlib.sha256()
    for path in (*SOURCES, *HEADERS):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for part in (*compiler_flags(), torch.__version__, torch.backends.cpu.get_cpu_capability()):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def compile_extension() -> ModuleType:
    """Build (or load the cached build of) the kernel; raises NativeBuildError when it cannot."""
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise NativeBuildError(
            f"no C++ compiler found (looked for {compiler!r}; install g++ or set CXX)"
        )
    from torch.utils import cpp_extension

    if not cpp_extension.is_ninja_available():
        raise NativeBuildError("ninja not found (pip install -c constraints.txt ninja)")
    key = build_key()
    directory = cache_root() / "native" / f"torch-{torch.__version__}-{key}"
    directory.mkdir(parents=True, exist_ok=True)
    try:
        return cpp_extension.load(
            name=f"lstmkit_native_{key}",
            sources=[str(path) for path in SOURCES],
            extra_cflags=compiler_flags(),
            extra_ldflags=["-lm"],  # glibc's libm pulls in libmvec, the vector exp and tanh
            build_directory=str(directory),
            verbose=False,
        )
    except (RuntimeError, OSError, ImportError) as error:
        details = "\n".join(str(error).strip().splitlines()[-15:])
        raise NativeBuildError(
            f"building the native kernel in {directory} failed:\n{details}"
        ) from error
