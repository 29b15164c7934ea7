"""Files and run directories: atomic writes, safetensors, the run lifecycle's rules.

    files.py    atomic writes and JSON read back with clear errors (no torch: the CLI
                imports it before any command runs)
    weights.py  weights and optimizer state in safetensors (no pickle)
    rundir.py   run directories: lock, resume, overwrite, manifest, consistent reads
"""
