"""Files and run directories: atomic writes, safetensors, the run lifecycle's rules.

    files.py    atomic writes and JSON read back with clear errors
    weights.py  weights and optimizer state in safetensors (no pickle)
    rundir.py   run directories: lock, resume, overwrite, manifest, consistent reads
"""

from lstmkit.io.files import atomic_path, atomic_write_json, atomic_write_text, read_json
from lstmkit.io.rundir import (
    CONFIG_FILE,
    FinishedRun,
    Run,
    check_outside_runs,
    check_writable,
    load_run,
    open_run,
    write_config,
)
from lstmkit.io.weights import load_weights, save_weights

__all__ = ["CONFIG_FILE", "FinishedRun", "Run", "atomic_path",
           "atomic_write_json", "atomic_write_text", "check_outside_runs", "check_writable",
           "load_run", "load_weights", "open_run", "read_json", "save_weights", "write_config"]
