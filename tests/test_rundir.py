"""Run-directory helpers: atomic files, safetensors weights and optimizer, config.json."""

import json
import os

import pytest
import torch

from lstmkit import rundir
from lstmkit.errors import LstmkitError
from lstmkit.rundir import (
    FORMAT_VERSION,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    load_optimizer_state,
    load_weights,
    prepare_run_dir,
    read_config,
    read_json,
    read_weights_metadata,
    save_optimizer_state,
    save_weights,
    staged_run_dir,
    write_config,
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

    monkeypatch.setattr(rundir.os, "replace", crash)
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


def test_prepare_run_dir(tmp_path):
    assert prepare_run_dir(tmp_path / "new", overwrite=False) == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    prepare_run_dir(tmp_path / "empty", overwrite=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "config.json").write_text("{}")
    with pytest.raises(LstmkitError, match="--overwrite"):
        prepare_run_dir(tmp_path / "full", overwrite=False)
    prepare_run_dir(tmp_path / "full", overwrite=True)
    assert (tmp_path / "full" / "config.json").exists()  # nothing deleted up front
    (tmp_path / "file").write_text("x")
    with pytest.raises(LstmkitError, match="is a file"):
        prepare_run_dir(tmp_path / "file", overwrite=True)


def _old_run(tmp_path):
    old = tmp_path / "run"
    old.mkdir()
    (old / "best.safetensors").write_text("old weights")
    (old / "notes").mkdir()
    return old


def test_staged_run_dir_failure_keeps_the_old_run(tmp_path):
    old = _old_run(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        with staged_run_dir(old, overwrite=True) as staging:
            assert staging.parent == tmp_path and staging != old
            (staging / "best.safetensors").write_text("half-trained")
            raise RuntimeError("boom")
    assert (old / "best.safetensors").read_text() == "old weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_staged_run_dir_success_replaces_the_old_run(tmp_path):
    old = _old_run(tmp_path)
    with staged_run_dir(old, overwrite=True) as staging:
        (staging / "best.safetensors").write_text("new weights")
    assert sorted(p.name for p in old.iterdir()) == ["best.safetensors"]
    assert (old / "best.safetensors").read_text() == "new weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_staged_run_dir_fallback_without_atomic_exchange(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir, "_exchange", lambda first, second: False)
    old = _old_run(tmp_path)
    with staged_run_dir(old, overwrite=True) as staging:
        (staging / "x").write_text("new")
    assert sorted(p.name for p in old.iterdir()) == ["x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_staged_run_dir_new_path_and_refusal(tmp_path):
    with staged_run_dir(tmp_path / "a" / "run", overwrite=False) as staging:
        (staging / "x").write_text("1")
    assert (tmp_path / "a" / "run" / "x").read_text() == "1"
    with pytest.raises(LstmkitError, match="--overwrite"):
        with staged_run_dir(tmp_path / "a" / "run", overwrite=False):
            pass
    assert (tmp_path / "a" / "run" / "x").read_text() == "1"


def test_staged_run_dir_swaps_only_on_rank_0(tmp_path, monkeypatch):
    old = _old_run(tmp_path)
    monkeypatch.setenv("RANK", "1")
    with staged_run_dir(old, overwrite=True) as scratch:
        assert scratch.parent != tmp_path
        (scratch / "x").write_text("rank 1")
    assert not scratch.exists()
    assert (old / "best.safetensors").read_text() == "old weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_config_round_trip(tmp_path):
    written = write_config(tmp_path, "forecast", {"window": 12, "columns": ["y"]})
    config = read_config(tmp_path, "forecast")
    assert config == written
    assert config["format_version"] == FORMAT_VERSION and config["task"] == "forecast"
    assert config["window"] == 12
    with pytest.raises(ValueError, match="reserved"):
        write_config(tmp_path, "forecast", {"task": "lm"})


def test_read_config_errors(tmp_path):
    with pytest.raises(LstmkitError, match="does not exist"):
        read_config(tmp_path / "nowhere", "forecast")
    with pytest.raises(LstmkitError, match="missing config.json"):
        read_config(tmp_path, "forecast")
    write_config(tmp_path, "lm", {})
    with pytest.raises(LstmkitError, match="this is a 'lm' model directory, not a 'forecast'"):
        read_config(tmp_path, "forecast")
    with pytest.raises(LstmkitError, match="missing best.safetensors"):
        read_config(tmp_path, "lm", required=["best.safetensors"])

    path = tmp_path / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(LstmkitError, match="newer lstmkit"):
        read_config(tmp_path, "lm")
    path.write_text(json.dumps({**config, "format_version": "one"}))
    with pytest.raises(LstmkitError, match="invalid format_version"):
        read_config(tmp_path, "lm")
    del config["task"]
    path.write_text(json.dumps(config))
    with pytest.raises(LstmkitError, match="lacks 'task'"):
        read_config(tmp_path, "lm")
    path.write_text("[1, 2]")
    with pytest.raises(LstmkitError, match="not a JSON object"):
        read_config(tmp_path, "lm")
    assert os.listdir(tmp_path) == ["config.json"]
