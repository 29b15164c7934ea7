"""The shared training loop: learning, determinism, early stopping, checkpoints, resume,
divergence, and data parallelism over two processes.

Run as a script (``torchrun ... tests/test_train.py OUT``) this file is also the
worker of the two-process test.
"""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from lstmkit.errors import LstmkitError
from lstmkit.io.weights import load_weights
from lstmkit.train import TrainConfig, TrainResult, evaluate_loss, fit, world_size
from lstmkit.train.batches import global_batches, plan_shares
from lstmkit.train.schedule import LearningRateSchedule


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny tensors on a shared 2-core machine: a second OpenMP thread only spins and
    # waits (a step takes ~100x longer), so run these tests single-threaded.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyLSTM(torch.nn.Module):
    """Reads a (B, T, 3) sequence and predicts one number from the last hidden state."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 8, batch_first=True)
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, _ = self.lstm(x)  # (B, T, H)
        return self.head(self.dropout(output[:, -1]))


def sequences(n: int, seed: int, sign: float = 1.0) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, 3, generator=generator)
    y = sign * (0.5 * x[:, :, 0].sum(dim=1, keepdim=True) - 0.3 * x[:, -1, 1:2])
    return TensorDataset(x, y)


def mse(model: torch.nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def new_model(seed: int = 0, dropout: float = 0.0) -> TinyLSTM:
    torch.manual_seed(seed)
    return TinyLSTM(dropout)


def config(**overrides) -> TrainConfig:
    options = {"epochs": 4, "batch_size": 8, "lr": 0.02, "progress": False}
    options.update(overrides)
    return TrainConfig(**options)


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def assert_same(first: dict, second: dict, atol: float = 0.0) -> None:
    assert first.keys() == second.keys()
    for key in first:
        if atol:
            torch.testing.assert_close(first[key], second[key], atol=atol, rtol=0)
        else:
            assert torch.equal(first[key], second[key]), key


def without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


# --------------------------------------------------------------------------- learning


def test_loss_decreases_and_log_has_a_row_per_epoch(tmp_path):
    model = new_model()
    result = fit(model, sequences(64, 1), mse, config(epochs=6), run_dir=tmp_path)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.stop_reason == "completed" and not result.stopped_early
    assert result.epochs_run == 6 and result.steps == 6 * 8
    assert result.best_val_loss is None and result.best_epoch == 6  # no validation: last
    assert_same(load_weights(tmp_path / "best.safetensors"), weights(model))

    with open(tmp_path / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["epoch", "step", "train_loss", "val_loss", "lr", "seconds"]
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3, 4, 5, 6]
    assert [int(row["step"]) for row in rows] == [8, 16, 24, 32, 40, 48]
    assert [float(row["train_loss"]) for row in rows] == losses
    assert all(row["val_loss"] == "" for row in rows)


def test_same_seed_gives_the_same_weights():
    runs = []
    for seed in (3, 3, 4):
        model = new_model(dropout=0.3)
        fit(model, sequences(48, 1), mse, config(epochs=2, seed=seed))
        runs.append(weights(model))
    assert_same(runs[0], runs[1])
    assert not torch.equal(runs[0]["head.weight"], runs[2]["head.weight"])


def test_early_stopping_restores_the_best_weights(tmp_path):
    # Validation targets are the negated training targets: the better the model
    # learns, the worse it validates, so early stopping must fire.
    model = new_model()
    val = sequences(32, 2, sign=-1.0)
    result = fit(model, sequences(64, 1), mse, config(epochs=30, patience=2), val_data=val,
                 run_dir=tmp_path)
    val_losses = [row["val_loss"] for row in result.history]
    assert result.stopped_early and result.stop_reason == "early_stopping"
    assert result.epochs_run == result.best_epoch + 2 < 30
    assert result.best_val_loss == min(val_losses) == val_losses[result.best_epoch - 1]
    assert evaluate_loss(model, val, mse, batch_size=8) == pytest.approx(result.best_val_loss)
    assert_same(load_weights(tmp_path / "best.safetensors"), weights(model))
    last = load_weights(tmp_path / "last.safetensors")
    assert not torch.equal(last["head.weight"], model.head.weight)


def test_callbacks_param_groups_and_unfreezing(tmp_path):
    calls = []

    class Loss:
        def __call__(self, model, batch):
            return mse(model, batch)

        def on_epoch_start(self, epoch):
            calls.append(("loss epoch", epoch))

        def on_eval_start(self):
            calls.append(("eval",))

    class Unfreeze:
        def on_epoch_start(self, epoch, model, optimizer):
            calls.append(("hook", epoch))
            model.lstm.requires_grad_(epoch >= 2)

    model = new_model()
    head_before = weights(model.head)
    lstm_before = weights(model.lstm)
    groups = [{"params": model.lstm.parameters()}, {"params": model.head.parameters(), "lr": 0.0}]
    fit(model, sequences(32, 1), Loss(), config(epochs=2), val_data=sequences(16, 2),
        param_groups=groups, hooks=Unfreeze(), run_dir=tmp_path)
    assert calls == [("hook", 1), ("loss epoch", 1), ("eval",),
                     ("hook", 2), ("loss epoch", 2), ("eval",)]
    last = load_weights(tmp_path / "last.safetensors")
    assert_same({k: last["head." + k] for k in head_before}, head_before)  # lr 0 in its group
    # Frozen in epoch 1, trained in epoch 2.
    assert not torch.equal(last["lstm.weight_ih_l0"], lstm_before["weight_ih_l0"])


# --------------------------------------------------------------------------- resume


class CrashAt:
    """Simulates a kill at the start of epoch ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_start(self, epoch, model, optimizer):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, schedule):
    options = {"epochs": 4, "schedule": schedule, "warmup_steps": 3, "weight_decay": 0.01,
               "plateau_patience": 1}
    train, val = sequences(44, 1), sequences(16, 2)

    whole = new_model(dropout=0.2)
    expected = fit(whole, train, mse, config(**options), val_data=val,
                   run_dir=tmp_path / "whole")

    with pytest.raises(KeyboardInterrupt):
        fit(new_model(dropout=0.2), train, mse, config(**options), val_data=val,
            run_dir=tmp_path / "cut", hooks=CrashAt(3))
    state = json.loads((tmp_path / "cut" / "trainer_state.json").read_text())
    assert state["state"]["completed_epochs"] == 2

    resumed = new_model(seed=99, dropout=0.2)  # different start: everything must load
    result = fit(resumed, train, mse, config(**options), val_data=val,
                 run_dir=tmp_path / "cut", resume=True)
    assert_same(weights(resumed), weights(whole))
    for name in ("last.safetensors", "best.safetensors"):
        assert_same(load_weights(tmp_path / "cut" / name), load_weights(tmp_path / "whole" / name))
    assert without_seconds(result.history) == without_seconds(expected.history)
    assert (result.best_epoch, result.steps) == (expected.best_epoch, expected.steps)
    log = (tmp_path / "cut" / "log.csv").read_text().splitlines()
    assert len(log) == 1 + 4


def test_resume_in_the_middle_of_an_epoch(tmp_path):
    train = sequences(48, 1)  # 6 steps per epoch
    whole = new_model(dropout=0.2)
    fit(whole, train, mse, config(epochs=3))

    first = fit(new_model(dropout=0.2), train, mse, config(epochs=3, max_steps=9),
                run_dir=tmp_path)
    assert (first.stop_reason, first.steps, first.epochs_run) == ("max_steps", 9, 2)
    resumed = new_model(seed=5, dropout=0.2)
    result = fit(resumed, train, mse, config(epochs=3), run_dir=tmp_path, resume=True)
    assert result.steps == 18 and result.stop_reason == "completed"
    assert_same(weights(resumed), weights(whole))


def test_resume_of_a_finished_run_returns_at_once(tmp_path):
    train = sequences(32, 1)
    first = fit(new_model(), train, mse, config(epochs=2), run_dir=tmp_path)
    model = new_model(seed=7)
    again = fit(model, train, mse, config(epochs=2), run_dir=tmp_path, resume=True)
    assert again.steps == first.steps and again.history == first.history
    assert_same(weights(model), load_weights(tmp_path / "best.safetensors"))


def test_resume_refusals(tmp_path):
    with pytest.raises(LstmkitError, match="no training checkpoint"):
        fit(new_model(), sequences(16, 1), mse, config(), run_dir=tmp_path, resume=True)
    with pytest.raises(LstmkitError, match="needs the run directory"):
        fit(new_model(), sequences(16, 1), mse, config(), resume=True)
    fit(new_model(), sequences(16, 1), mse, config(epochs=1), run_dir=tmp_path)
    with pytest.raises(LstmkitError, match="already holds a training checkpoint"):
        fit(new_model(), sequences(16, 1), mse, config(epochs=1), run_dir=tmp_path)
    # Weights and trainer state from different steps: a kill between two writes.
    path = tmp_path / "trainer_state.json"
    document = json.loads(path.read_text())
    document["state"]["step"] += 1
    path.write_text(json.dumps(document))
    with pytest.raises(LstmkitError, match="killed while saving"):
        fit(new_model(), sequences(16, 1), mse, config(epochs=2), run_dir=tmp_path, resume=True)


# --------------------------------------------------------------------------- limits


def test_divergence_raises_and_keeps_the_last_good_checkpoint(tmp_path):
    class NanAtEpoch3:
        epoch = 0

        def __call__(self, model, batch):
            loss = mse(model, batch)
            return loss * math.nan if self.epoch == 3 else loss

        def on_epoch_start(self, epoch):
            self.epoch = epoch

    model = new_model()
    with pytest.raises(LstmkitError, match=r"diverged at epoch 3 step 9: loss is nan.*--lr"):
        fit(model, sequences(32, 1), NanAtEpoch3(), config(epochs=5), run_dir=tmp_path)
    state = json.loads((tmp_path / "trainer_state.json").read_text())["state"]
    assert (state["completed_epochs"], state["step"]) == (2, 8)
    last = load_weights(tmp_path / "last.safetensors")
    assert all(torch.isfinite(t).all() for t in last.values())
    assert_same(last, weights(model))  # the bad step never reached the weights


def test_time_budget_and_max_steps():
    result = fit(new_model(), sequences(32, 1), mse, config(time_budget_s=1e-9))
    assert (result.stop_reason, result.steps, result.stopped_early) == ("time_budget", 1, True)
    result = fit(new_model(), sequences(32, 1), mse, config(epochs=9, max_steps=6))
    assert (result.stop_reason, result.steps, result.epochs_run) == ("max_steps", 6, 2)


def test_time_budget_counts_from_the_start_given_and_the_schedule_fits_it():
    import time

    started = time.monotonic() - 10.0  # the command began 10 s ago: the budget is spent
    result = fit(new_model(), sequences(32, 1), mse, config(time_budget_s=5.0),
                 started=started)
    assert result.stop_reason == "time_budget" and result.steps == 1
    schedule = LearningRateSchedule("cosine", [1.0], total_steps=1000)
    assert schedule.factor(10) > 0.99  # by steps barely begun,
    assert schedule.factor(10, time_used=1.0) == pytest.approx(0.0)  # by the clock: done
    assert schedule.factor(10, time_used=0.5) == pytest.approx(0.5)


def test_config_errors_name_the_option():
    with pytest.raises(LstmkitError, match="schedule 'step'.*cosine"):
        TrainConfig(schedule="step")
    with pytest.raises(LstmkitError, match="--epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(LstmkitError, match="--lr"):
        TrainConfig(lr=-1.0)
    with pytest.raises(LstmkitError, match="training data is empty"):
        fit(new_model(), sequences(0, 1), mse, config())


def test_schedules():
    def factors(name, warmup=0):
        schedule = LearningRateSchedule(name, [1.0], total_steps=10, warmup_steps=warmup)
        return [schedule.factor(step) for step in range(10)]

    assert factors("constant", warmup=4)[:5] == [0.25, 0.5, 0.75, 1.0, 1.0]
    linear = factors("linear", warmup=2)
    assert linear[:3] == [0.5, 1.0, 1.0] and linear[-1] == pytest.approx(1 / 8)
    cosine = factors("cosine")
    assert cosine[0] == 1.0 and all(a > b for a, b in zip(cosine, cosine[1:], strict=False))
    onecycle = factors("onecycle")  # rises over the first 30%, then falls
    assert onecycle[0] == pytest.approx(1 / 25) and max(onecycle) == onecycle[3] == 1.0

    plateau = LearningRateSchedule("plateau", [0.1, 0.01], 10, plateau_factor=0.5,
                                   plateau_patience=2)
    for loss in (1.0, 0.9, 0.95, 0.92):
        plateau.observe(loss)
    optimizer = torch.optim.AdamW([{"params": [torch.zeros(1)]}, {"params": [torch.ones(1)]}])
    plateau.apply(optimizer, 0)
    assert [group["lr"] for group in optimizer.param_groups] == [0.05, 0.005]


def test_each_process_takes_a_contiguous_share_of_every_global_batch():
    order = np.arange(23)
    batches = global_batches(order, order, 9)
    shares = [plan_shares(batches, rank, 2, training=True) for rank in (0, 1)]
    # Batches of 9, 9 and 5: split 5+4, 5+4, 3+2; every item once, in order.
    assert [len(s.indices) for s in shares[0]] == [5, 5, 3]
    assert [s.global_size for s in shares[1]] == [9, 9, 5]
    joined = np.concatenate([np.concatenate([a.indices, b.indices])
                             for a, b in zip(*shares, strict=True)])
    assert np.array_equal(joined, order)
    # A last batch smaller than the number of processes cannot be trained on.
    assert len(plan_shares(global_batches([], np.arange(19), 9), 0, 2, training=True)) == 2
    assert len(plan_shares(global_batches([], np.arange(19), 9), 0, 1, training=True)) == 3


# --------------------------------------------------------------------------- processes


def distributed_run(run_dir: Path) -> tuple[TrainResult, int]:
    """The run compared between one process and two: uneven shares, shuffled, validated.

    Returns the result and how many examples this process's loss_fn saw.
    """
    seen = []

    def counting_mse(model, batch):
        seen.append(len(batch[0]))
        return mse(model, batch)

    result = fit(new_model(), sequences(41, 1), counting_mse,
                 config(epochs=2, batch_size=9, lr=0.05), val_data=sequences(13, 2),
                 run_dir=run_dir)
    return result, sum(seen)


def test_two_processes_match_one(tmp_path):
    single, single_seen = distributed_run(tmp_path / "single")
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--standalone", __file__, str(tmp_path / "pair")]
    finished = subprocess.run(command, env=environment, capture_output=True, text=True,
                              timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    pair_weights = load_weights(tmp_path / "pair" / "last.safetensors")
    assert_same(pair_weights, load_weights(tmp_path / "single" / "last.safetensors"), atol=1e-5)
    pair = json.loads((tmp_path / "pair" / "trainer_state.json").read_text())["state"]
    for mine, theirs in zip(single.history, pair["history"], strict=True):
        assert theirs["step"] == mine["step"]
        assert theirs["train_loss"] == pytest.approx(mine["train_loss"], rel=1e-5)
        assert theirs["val_loss"] == pytest.approx(mine["val_loss"], rel=1e-5)
    # Each process computed its own share: together exactly what one process did.
    seen = [json.loads((tmp_path / f"seen{rank}.json").read_text()) for rank in (0, 1)]
    assert sum(seen) == single_seen and 0 < seen[1] < seen[0] < single_seen


if __name__ == "__main__":
    assert world_size() == 2
    output = Path(sys.argv[1])
    _, examples = distributed_run(output)
    (output.parent / f"seen{os.environ['RANK']}.json").write_text(json.dumps(examples))
