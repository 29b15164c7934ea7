"""The peers' own virtualenvs: a benchmark's peer libraries are installed beside this
machine's torch 2.13.0 in a venv of their own, never into lstmkit's, and pip is never
allowed to swap torch (a constraints file pins it for every install).

    python = venv_python(venv_dir)
    if not ready(python, "import joeynmt"):
        with pip_in(venv_dir, log_path) as pip:
            pip("install", TORCH_PIN)
            pip("install", "-c", str(pip.constraints), "joeynmt")

Standard library only: both sides of a benchmark import it.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import venv
from collections.abc import Iterator
from pathlib import Path

TORCH_PIN = "torch==2.13.0"


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def ready(python: Path, imports: str) -> bool:
    """Whether ``python`` runs ``imports`` and has the pinned torch."""
    check = (f"{imports}; import torch; "
             f"assert torch.__version__.split('+')[0] == '{TORCH_PIN.split('==')[1]}'")
    return python.exists() and subprocess.run(
        [str(python), "-c", check], capture_output=True).returncode == 0


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, for an error message."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Pip:
    """pip of one venv, its output appended to a log; ``constraints`` pins torch."""

    def __init__(self, python: Path, log_path: Path, constraints: Path) -> None:
        self.python, self.log_path, self.constraints = python, log_path, constraints

    def __call__(self, *args: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"\n$ pip {' '.join(args)}\n")
            log.flush()
            done = subprocess.run([str(self.python), "-m", "pip", *args], stdout=log,
                                  stderr=subprocess.STDOUT)
        if done.returncode:
            raise RuntimeError(f"pip {args[0]} failed (exit {done.returncode}); the last "
                               f"lines of {self.log_path}:\n{tail(self.log_path)}")


@contextlib.contextmanager
def pip_in(venv_dir: Path, log_path: Path) -> Iterator[Pip]:
    """The venv at ``venv_dir`` (made if missing) and its :class:`Pip`."""
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    python = venv_python(venv_dir)
    if not python.exists():
        print(f"creating {venv_dir} ...", flush=True)
        venv.create(venv_dir, with_pip=True)
    with tempfile.TemporaryDirectory() as folder:
        constraints = Path(folder) / "constraints.txt"
        constraints.write_text(TORCH_PIN + "\n")
        yield Pip(python, log_path, constraints)
