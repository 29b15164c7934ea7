"""Files, weights and run directories: atomic writes, safetensors, the run rules."""

import json

import pytest
import torch

from lstmkit.errors import LstmkitError, RunInterrupted
from lstmkit.io import files, rundir
from lstmkit.io.files import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from lstmkit.io.rundir import (
    FORMAT_VERSION,
    check_outside_runs,
    load_run,
    open_run,
    pending_path,
    write_config,
)
from lstmkit.io.weights import (
    load_optimizer_state,
    load_weights,
    read_weights_metadata,
    save_optimizer_state,
    save_weights,
)


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "héllo")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    atomic_write_json(tmp_path / "sub" / "c.json", {"x": [1, 2]})
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert read_json(tmp_path / "sub" / "c.json") == {"x": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin", "sub"]
    assert (tmp_path / "a.txt").stat().st_mode & 0o044  # not owner-only like mkstemp's


def test_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    atomic_write_json(target, {"epoch": 1})

    def crash(source, destination):
        raise OSError("disk gone")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write_json(target, {"epoch": 2})
    with pytest.raises(OSError):
        save_weights(tmp_path / "w.safetensors", {"a": torch.ones(2)})
    assert read_json(target) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_json_rejects_nan_and_reports_bad_files(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"loss": float("nan")})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LstmkitError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")
    with pytest.raises(LstmkitError, match="does not exist"):
        read_json(tmp_path / "missing.json")


def test_weights_round_trip_with_tied_and_strided_tensors(tmp_path):
    embedding = torch.nn.Embedding(5, 3)
    decoder = torch.nn.Linear(3, 5)
    decoder.weight = embedding.weight  # tied, as language models do
    model = torch.nn.ModuleDict({"embedding": embedding, "decoder": decoder})
    state = dict(model.state_dict())
    state["transposed"] = torch.arange(6.0).reshape(2, 3).t()
    save_weights(tmp_path / "w.safetensors", state, {"note": "hi"})

    loaded = load_weights(tmp_path / "w.safetensors")
    assert loaded.keys() == state.keys()
    for key in state:
        assert torch.equal(loaded[key], state[key])
    assert loaded["decoder.weight"] is loaded["embedding.weight"]
    assert read_weights_metadata(tmp_path / "w.safetensors")["note"] == "hi"
    fresh = torch.nn.ModuleDict({"embedding": torch.nn.Embedding(5, 3),
                                 "decoder": torch.nn.Linear(3, 5)})
    del loaded["transposed"]
    fresh.load_state_dict(loaded)
    assert torch.equal(fresh["decoder"].bias, decoder.bias)


def test_load_weights_errors(tmp_path):
    with pytest.raises(LstmkitError, match="no weights file"):
        load_weights(tmp_path / "nope.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"definitely not safetensors")
    with pytest.raises(LstmkitError, match="not a valid safetensors"):
        load_weights(tmp_path / "junk.safetensors")


def _adamw_steps(model, optimizer, steps, seed):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(4, 3, generator=generator)
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()


def test_optimizer_state_round_trip_without_pickle(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    groups = [
        {"params": model[0].parameters(), "lr": 0.01},
        {"params": model[2].parameters(), "weight_decay": 0.1},
    ]
    optimizer = torch.optim.AdamW(groups, lr=0.05, betas=(0.8, 0.95))
    _adamw_steps(model, optimizer, 3, seed=1)
    save_optimizer_state(tmp_path / "optimizer.safetensors", optimizer.state_dict())

    # The file is safetensors: an 8-byte header length, then a JSON header.
    raw = (tmp_path / "optimizer.safetensors").read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert "state.0.exp_avg" in header

    twin = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    twin.load_state_dict(model.state_dict())
    twin_optimizer = torch.optim.AdamW(
        [{"params": twin[0].parameters()}, {"params": twin[2].parameters()}], lr=1.0
    )
    twin_optimizer.load_state_dict(load_optimizer_state(tmp_path / "optimizer.safetensors"))
    assert twin_optimizer.param_groups[0]["lr"] == 0.01
    assert twin_optimizer.param_groups[1]["betas"] == (0.8, 0.95)

    _adamw_steps(model, optimizer, 2, seed=2)
    _adamw_steps(twin, twin_optimizer, 2, seed=2)
    for mine, theirs in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(mine, theirs)


def test_optimizer_state_before_any_step(tmp_path):
    optimizer = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
    save_optimizer_state(tmp_path / "o.safetensors", optimizer.state_dict())
    assert load_optimizer_state(tmp_path / "o.safetensors")["state"] == {}
    save_weights(tmp_path / "w.safetensors", {"a": torch.ones(1)})
    with pytest.raises(LstmkitError, match="no optimizer state"):
        load_optimizer_state(tmp_path / "w.safetensors")


def _finished_run(path, task="forecast", value=1):
    with open_run(path, task, overwrite=True) as run:
        write_config(run.work, task, {"value": value})
        save_weights(run.work / "model.safetensors", {"w": torch.full((2,), float(value))})
    return path


def _read_value(run):
    return run.config["value"], float(run.weights("model.safetensors")["w"][0])


def test_new_run_is_written_in_place_and_finished_by_its_manifest(tmp_path):
    path = tmp_path / "a" / "run"
    with open_run(path, "forecast") as run:
        assert run.work == path and run.writer and not run.resumed
        write_config(run.work, "forecast", {"value": 3})
        assert not (path / "manifest.json").exists()  # unfinished until the block ends
        with pytest.raises(LstmkitError, match="has not finished"):
            load_run(path, "forecast", _read_value)
    assert load_run(path, "forecast", lambda run: run.config["value"]) == 3
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["run"]  # lock removed
    with pytest.raises(LstmkitError, match="finished run; pass --overwrite"):
        with open_run(path, "forecast"):
            pass
    with pytest.raises(LstmkitError, match="nothing to resume"):
        with open_run(path, "forecast", resume=True):
            pass
    with pytest.raises(LstmkitError, match="'forecast' run directory, not a 'lm'"):
        load_run(path, "lm", _read_value)


def test_a_second_writer_is_refused(tmp_path):
    path = tmp_path / "run"
    with open_run(path, "forecast"):
        with pytest.raises(LstmkitError, match="being written by another lstmkit process"):
            with open_run(path, "forecast", overwrite=True):
                pass
    assert not (tmp_path / ".run.lock").exists()


def test_failed_new_run_leaves_nothing_and_interrupted_run_keeps_its_work(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with open_run(tmp_path / "run", "forecast") as run:
            (run.work / "last.safetensors").write_bytes(b"x")
            raise ZeroDivisionError
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RunInterrupted, match="--resume"):
        with open_run(tmp_path / "run", "forecast") as run:
            write_config(run.work, "forecast", {})
            raise KeyboardInterrupt
    assert (tmp_path / "run" / "config.json").is_file()
    with pytest.raises(LstmkitError, match="interrupted run; pass --resume"):
        with open_run(tmp_path / "run", "forecast"):
            pass
    with open_run(tmp_path / "run", "forecast", resume=True) as run:
        assert run.resumed and run.work == tmp_path / "run"


def test_overwrite_keeps_the_old_run_until_the_new_one_finishes(tmp_path):
    path = _finished_run(tmp_path / "run", value=1)
    with pytest.raises(RunInterrupted):
        with open_run(path, "forecast", overwrite=True) as run:
            assert run.work == pending_path(path)
            write_config(run.work, "forecast", {"value": 2})
            raise KeyboardInterrupt
    assert load_run(path, "forecast", _read_value) == (1, 1.0)  # the old run, loadable
    with open_run(path, "forecast", resume=True) as run:  # the interrupted overwrite
        assert run.work == pending_path(path) and run.resumed
        write_config(run.work, "forecast", {"value": 2})
        save_weights(run.work / "model.safetensors", {"w": torch.full((2,), 2.0)})
    assert load_run(path, "forecast", _read_value) == (2, 2.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing left behind


def test_overwrite_fallback_without_atomic_exchange(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir, "_exchange", lambda first, second: False)
    path = _finished_run(tmp_path / "run", value=1)
    _finished_run(path, value=2)
    assert load_run(path, "forecast", _read_value) == (2, 2.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_reader_retries_when_a_run_is_swapped_under_it(tmp_path):
    path = _finished_run(tmp_path / "run", value=1)
    calls = []

    def read(run):
        calls.append(1)
        if len(calls) == 1:  # another process replaces the run between two reads
            _finished_run(path, value=2)
        return _read_value(run)

    assert load_run(path, "forecast", read) == (2, 2.0)
    assert len(calls) == 2


def test_edited_or_damaged_files_are_reported(tmp_path):
    path = _finished_run(tmp_path / "run")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "value": 5}))
    with pytest.raises(LstmkitError, match="does not match the run's manifest.json"):
        load_run(path, "forecast", _read_value)
    with pytest.raises(LstmkitError, match="does not exist"):
        load_run(tmp_path / "nowhere", "forecast", _read_value)
    (tmp_path / "plain").mkdir()
    with pytest.raises(LstmkitError, match="not an lstmkit run directory"):
        load_run(tmp_path / "plain", "forecast", _read_value)


def test_weights_are_checked_against_the_network_before_it_is_built(tmp_path):
    path = _finished_run(tmp_path / "run")

    def read(run):
        return run.weights("model.safetensors", lambda: torch.nn.Linear(10**6, 10**6))

    with pytest.raises(LstmkitError, match="does not fit the network"):
        load_run(path, "forecast", read)


def test_paths_that_cannot_be_written_and_outputs_inside_runs(tmp_path):
    (tmp_path / "file.csv").write_text("x")
    with pytest.raises(LstmkitError, match="which is a file, not a folder"):
        with open_run(tmp_path / "file.csv" / "run", "forecast"):
            pass
    with pytest.raises(LstmkitError, match="is a file, not a directory"):
        with open_run(tmp_path / "file.csv", "forecast"):
            pass
    run = _finished_run(tmp_path / "run")
    with pytest.raises(LstmkitError, match="points into the model's run directory"):
        check_outside_runs(run / "plots", "--output-dir", [run])
    with pytest.raises(LstmkitError, match="points into the model's run directory"):
        check_outside_runs(run, "--output-dir", [run])
    check_outside_runs(tmp_path / "plots", "--output-dir", [run])


def test_deeply_nested_json_is_refused(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(LstmkitError, match="levels deep"):
        read_json(tmp_path / "deep.json")


def test_config_round_trip(tmp_path):
    written = write_config(tmp_path, "forecast", {"window": 12, "columns": ["y"]})
    assert written["format_version"] == FORMAT_VERSION and written["task"] == "forecast"
    assert read_json(tmp_path / "config.json") == written
    with pytest.raises(ValueError, match="reserved"):
        write_config(tmp_path, "forecast", {"task": "lm"})
