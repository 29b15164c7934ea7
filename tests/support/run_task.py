"""Train one task's tiny model into a run directory, as a separate process.

    python run_task.py TASK DATA_DIR RUN_DIR [--overwrite] [--resume] [--kill-after N]
        [--variant V] [--no-dropout]

``--kill-after N`` sends this process SIGKILL right after the training loop's N-th
checkpoint, as a user's kill would land (the lifecycle tests resume it afterwards).
``--variant`` changes the seed, so an overwrite trains a different model.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tasks import make_task  # noqa: E402

from lstmkit.tasks.long_range import training  # noqa: E402
from lstmkit.train import loop  # noqa: E402

# where each task's training writes its checkpoint: the shared loop, the experiments' own
CHECKPOINT_WRITERS = ((loop, "save_checkpoint"), (training, "_save_checkpoint"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("task")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-after", type=int)
    parser.add_argument("--variant", type=int, default=0)
    parser.add_argument("--no-dropout", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.kill_after is not None:
        saved = {"count": 0}
        for module, name in CHECKPOINT_WRITERS:
            setattr(module, name, _then_die(getattr(module, name), saved, args.kill_after))
    model, data, options = make_task(args.task, args.data_dir, args.variant,
                                     dropout=not args.no_dropout)
    model.fit(data, args.run_dir, resume=args.resume, overwrite=args.overwrite, **options)


def _then_die(save, saved: dict, after: int):
    def save_then_die(*arguments, **keywords):
        save(*arguments, **keywords)
        saved["count"] += 1
        if saved["count"] == after:
            os.kill(os.getpid(), signal.SIGKILL)

    return save_then_die


if __name__ == "__main__":
    main()
