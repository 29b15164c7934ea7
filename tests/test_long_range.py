"""Long-range dependency tasks: generators, models at equal budget, a short run, the CLI."""

import math

import numpy as np
import pytest
import torch

from lstmkit.cli import main
from lstmkit.data.long_range import (
    ADDING_BASELINE_MSE,
    COPY_BLANK,
    COPY_DELIMITER,
    adding_batch,
    copy_baseline_cross_entropy,
    copy_batch,
    load_digit_sequences,
)
from lstmkit.errors import LstmkitError
from lstmkit.experiment import Experiment
from lstmkit.tasks.long_range import ExperimentConfig, hidden_state_gradient_norms, run_experiment
from lstmkit.tasks.long_range.models import build_model, parameter_count
from lstmkit.tasks.long_range.specs import task_spec


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # several torch threads fight over a busy 2-core machine; one is much faster
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_adding_markers_values_and_targets():
    T = 30
    x, y = adding_batch(4000, T, torch.Generator().manual_seed(0))
    assert x.shape == (4000, T, 2) and y.shape == (4000,)
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[:, : T // 2].sum(1) == 1).all()
    assert (markers[:, T // 2 :].sum(1) == 1).all()
    torch.testing.assert_close(y, (values * markers).sum(1))
    # both marked positions are spread over their whole half
    first = markers[:, : T // 2].argmax(1)
    second = markers[:, T // 2 :].argmax(1) + T // 2
    assert first.unique().numel() == T // 2 and second.unique().numel() == T - T // 2
    assert abs(values.mean().item() - 0.5) < 0.01


def test_adding_constant_one_scores_one_sixth():
    _, y = adding_batch(200_000, 10, torch.Generator().manual_seed(1))
    mse = (y - 1).pow(2).mean().item()
    assert ADDING_BASELINE_MSE == pytest.approx(1 / 6)
    assert mse == pytest.approx(1 / 6, abs=0.003)


def test_copy_inputs_and_targets():
    T = 7
    x, y = copy_batch(50, T, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (50, T + 20)
    data = x[:, :10]
    assert (data < 8).all()
    assert (x[:, 10 : 10 + T - 1] == COPY_BLANK).all()
    assert (x[:, 10 + T - 1] == COPY_DELIMITER).all()
    assert (x[:, T + 10 :] == COPY_BLANK).all()
    assert (y[:, : T + 10] == COPY_BLANK).all()
    assert torch.equal(y[:, T + 10 :], data)


def test_copy_baseline_is_the_memoryless_cross_entropy():
    T = 100
    assert copy_baseline_cross_entropy(T) == pytest.approx(10 * math.log(8) / 120)
    # blank with certainty, then uniform over the 8 data symbols for the 10 recalled steps
    _, y = copy_batch(20, T)
    logits = torch.full((20, T + 20, 10), -1e9)
    logits[:, : T + 10, COPY_BLANK] = 0.0
    logits[:, T + 10 :, :8] = 0.0
    memoryless = torch.nn.functional.cross_entropy(logits.reshape(-1, 10), y.reshape(-1))
    assert memoryless.item() == pytest.approx(copy_baseline_cross_entropy(T), rel=1e-5)


def test_digits_shapes_split_and_permutation_fixed_by_seed():
    plain = load_digit_sequences(seed=3)
    assert plain.train_x.shape[1:] == (64, 1) and len(plain.train_x) + len(plain.test_x) == 1797
    assert len(plain.test_x) == 450
    assert 0.0 <= plain.train_x.min() and plain.train_x.max() == 1.0
    # stratified: every class holds the same share of the test set as of the whole
    counts = torch.bincount(plain.test_y)
    assert counts.min() >= 43 and counts.max() <= 46
    permuted = load_digit_sequences(permuted=True, seed=3)
    again = load_digit_sequences(permuted=True, seed=3)
    assert torch.equal(permuted.permutation, again.permutation)
    assert not torch.equal(permuted.permutation, torch.arange(64))
    torch.testing.assert_close(permuted.train_x, plain.train_x[:, permuted.permutation])
    other = load_digit_sequences(permuted=True, seed=4)
    assert not torch.equal(other.permutation, permuted.permutation)


@pytest.mark.parametrize("model, variant", [("lstm", "plain"), ("lstm", "layer_norm"),
                                            ("lstm", "peephole"), ("gru", "plain"),
                                            ("rnn", "plain")])
def test_models_share_the_lstm_parameter_budget(model, variant):
    config = ExperimentConfig("adding", model, 20, variant, hidden=32)
    spec = task_spec(config)
    built = build_model(config, spec)
    counted = sum(p.numel() for p in built.parameters())
    assert counted == parameter_count(model, variant, 2, built.encoder.hidden_size, 1)
    budget = parameter_count("lstm", "plain", 2, 32, 1)
    assert counted <= budget
    assert parameter_count(model, variant, 2, built.encoder.hidden_size + 1, 1) > budget


def test_lstm_learns_the_adding_problem_below_baseline():
    config = ExperimentConfig("adding", "lstm", 20, hidden=32, batch_size=32, lr=1e-2,
                              steps=400, eval_every=100, test_size=500, time_budget_s=40)
    result, _ = run_experiment(config)
    assert result.backend in ("fused", "native")  # auto: a compiled kernel, never reference
    assert result.final_metric < 0.5 * ADDING_BASELINE_MSE
    assert result.steps_to_beat_baseline is not None


def test_gradient_norms_cover_every_step():
    config = ExperimentConfig("adding", "lstm", 12, hidden=8)
    spec = task_spec(config)
    model = build_model(config, spec)
    x, y = adding_batch(4, 12)
    norms = hidden_state_gradient_norms(model, x, y, spec.loss)
    assert set(norms) == {"h", "c"}
    assert norms["h"].shape == norms["c"].shape == (12,)
    assert (norms["c"][:-1] > 0).all() and (norms["h"] > 0).all()
    assert np.isnan(norms["c"][-1])  # c_T reaches the loss only through h_T


def test_config_rejects_bad_values():
    with pytest.raises(LstmkitError, match="length T"):
        ExperimentConfig("copy", length=0)
    with pytest.raises(LstmkitError, match="LSTM variant"):
        ExperimentConfig("adding", "gru", 10, "peephole")


@pytest.mark.parametrize("argv, message", [
    (["experiment", "adding", "--length", "0"], "length T must be an integer >= 2"),
    (["experiment", "copy", "--length", "-5"], "length T must be an integer >= 1"),
    (["experiment", "adding", "--length", "50", "--cell", "transformer"],
     "unknown --cell 'transformer'"),
])
def test_cli_rejects_bad_arguments(argv, message, capsys, tmp_path):
    status = main([*argv, "--run-dir", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert status == 2
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert not any(tmp_path.iterdir())


def test_cli_writes_a_run_directory(capsys, tmp_path):
    status = main(["experiment", "copy", "--length", "3", "--hidden-size", "8", "--steps",
                   "20", "--eval-every", "10", "--quiet", "--run-dir", str(tmp_path / "run")])
    assert status == 0
    out = capsys.readouterr().out
    assert "copy_T3_lstm_plain_s0" in out and "baseline" in out
    for name in ("config.json", "model.safetensors", "result.json", "metrics.json",
                 "curve.png", "manifest.json"):
        assert (tmp_path / "run" / name).is_file(), name
    experiment = Experiment.load(tmp_path / "run")
    evaluation = experiment.evaluate()
    assert set(evaluation.rows) == {"model", "baseline"}
    assert evaluation["model"]["cross_entropy"] == pytest.approx(
        experiment.result.final_metrics["cross_entropy"])
