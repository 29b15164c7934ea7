"""ONNX export: every task's graphs run in onnxruntime and give what the loaded model gives,
at lengths and batch sizes other than the export's example; ExportableLSTM matches the
layer for every variant; the command's errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn
from torch.export import Dim

from lstmkit.cli import main
from lstmkit.errors import LstmkitError
from lstmkit.nn import LSTM
from lstmkit.serve.export import export_run
from lstmkit.serve.exportable import ExportableLSTM

ATOL = 1e-4
LENGTHS = (3, 9)
BATCHES = (1, 4)


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    """exported(task) -> (the run directory, the folder its export was written to)."""
    root = tmp_path_factory.mktemp("exports")
    folders = {}

    def export(task: str):
        if task not in folders:
            run = trained_run(task)
            folders[task] = export_run(run, root / task).directory
        return trained_run(task), folders[task]

    return export


def session(path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(onnx_session: onnxruntime.InferenceSession, **inputs) -> list[np.ndarray]:
    return onnx_session.run(None, {name: np.asarray(value) for name, value in inputs.items()})


def close(got: np.ndarray, expected: torch.Tensor) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), expected.double().numpy(),
                               atol=ATOL, rtol=0)


def random_lengths(batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    lengths = torch.randint(1, length + 1, (batch,), generator=generator)
    lengths[0] = length  # the padded batch is as long as its longest sequence
    return lengths


# --------------------------------------------------------------------------- the tasks


def test_forecast_ensemble_matches_the_forecaster(exported):
    from lstmkit.data.windows import make_prediction_input
    from lstmkit.forecast import Forecaster

    run_dir, folder = exported("forecast")
    forecaster = Forecaster.load(run_dir)
    graph = session(folder / "model.onnx")
    description = json.loads((folder / "export.json").read_text())
    assert (folder / "scaler.json").is_file()
    assert description["graphs"]["model"]["inputs"][0]["shape"] == ["batch", 12, 1]
    generator = torch.Generator().manual_seed(1)
    window, horizon = forecaster.config.window, forecaster.config.horizon
    # the skip term reads exactly `window` steps, so only the batch size varies
    for batch in BATCHES:
        x = torch.randn(batch, window, 1, generator=generator)
        future = torch.zeros(batch, horizon, 0)
        series_id = torch.zeros(batch, dtype=torch.long)
        with torch.no_grad():
            expected = torch.stack([net(x, future, series_id).sort(dim=-1).values
                                    for net in forecaster.members]).median(dim=0).values
        close(run(graph, x=x, future=future, series_id=series_id)[0], expected)
    # end to end, as export.json describes it: the scaled windows in, both scalings undone
    data = forecaster.config.load(run_dir.parent / "forecast-data" / "data.csv")
    config = forecaster.config
    inputs = make_prediction_input(forecaster.scaler.transform(data), window, horizon,
                                   window_center=config.window_center,
                                   window_scale=config.window_scale)
    normalised = run(graph, x=inputs.x, future=inputs.future, series_id=inputs.series_id)[0]
    values = forecaster.scaler.inverse_target(inputs.invert(normalised.astype(np.float64)),
                                              inputs.series_id.numpy())
    np.testing.assert_allclose(values, forecaster.forecast_quantiles(data)[0], rtol=1e-4)


def test_classifier_probabilities_match(exported):
    from lstmkit.classify import Classifier
    from lstmkit.tasks.classify.data import collate

    run_dir, folder = exported("classify")
    classifier = Classifier.load(run_dir)
    net = classifier.net.eval()
    graph = session(folder / "model.onnx")
    assert (folder / "tokenizer.json").is_file()
    generator = torch.Generator().manual_seed(2)
    vocabulary = net.embedding.num_embeddings
    for length in LENGTHS:
        for batch in BATCHES:
            ids = torch.randint(1, vocabulary, (batch, length), generator=generator)
            lengths = random_lengths(batch, length, generator)
            with torch.no_grad():
                expected = torch.softmax(net(ids, lengths), dim=1)
            close(run(graph, inputs=ids, lengths=lengths)[0], expected)
    texts = ["great cat sat on the mat", "the dog ran", "a big red dog"]
    batch = collate([(ids, torch.tensor(0)) for ids in classifier.encode(texts)])
    got = run(graph, inputs=batch.inputs, lengths=batch.lengths)[0]
    np.testing.assert_allclose(got, classifier.predict_proba(texts), atol=ATOL)


def test_language_model_step_rolls_out_like_the_network(exported):
    from lstmkit.lm import LanguageModel

    run_dir, folder = exported("lm")
    net = LanguageModel.load(run_dir).net.eval()
    graph = session(folder / "model.onnx")
    generator = torch.Generator().manual_seed(3)
    vocabulary, layers = net.embedding.num_embeddings, len(net.layers)
    size = net.config.hidden_size
    for length in LENGTHS:
        for batch in BATCHES:
            tokens = torch.randint(1, vocabulary, (batch, length), generator=generator)
            with torch.no_grad():
                expected = net(tokens).logits  # (B, T, V): the whole sequence at once
            h = c = np.zeros((layers, batch, size), dtype=np.float32)
            for t in range(length):
                logits, h, c = run(graph, token=tokens[:, t], h=h, c=c)
                close(logits, expected[:, t])


def test_translation_encoder_and_decoder_step_match(exported):
    from lstmkit.translate import Translator

    run_dir, folder = exported("translate")
    net = Translator.load(run_dir).net.eval()
    encoder, step = session(folder / "encoder.onnx"), session(folder / "decoder_step.onnx")
    description = json.loads((folder / "export.json").read_text())
    bos = description["preprocessing"]["start_id"]
    generator = torch.Generator().manual_seed(4)
    vocabulary = net.source_embedding.num_embeddings
    for length in LENGTHS:
        for batch in BATCHES:
            source = torch.randint(1, vocabulary, (batch, length), generator=generator)
            lengths = random_lengths(batch, length, generator)
            with torch.no_grad():
                encoded = net.encode(source, lengths)
            states, mask, prepared, initial = run(encoder, source=source, lengths=lengths)
            for got, expected in zip((states, mask, prepared, initial), encoded):
                close(got, expected)
            # greedy decoding for a few steps, lstmkit's own stepper beside the graph
            stepper = net.stepper()
            tokens = torch.full((batch,), bos)
            state = net.initial_state(encoded)
            h, c, feed = initial, np.zeros_like(initial), np.zeros_like(initial[0])
            for _ in range(3):
                with torch.no_grad():
                    expected = net.step(stepper, tokens, state, encoded, beams=1)
                logits, h, c, feed, attention = run(step, tokens=tokens, h=h, c=c, feed=feed,
                                                    states=states, mask=mask, prepared=prepared)
                close(logits, expected.logits)
                close(attention, expected.attention)
                close(h, expected.state.h)
                state = expected.state
                tokens = expected.logits.argmax(dim=1)


def test_finance_network_matches(exported):
    from lstmkit.finance import FinanceModel

    run_dir, folder = exported("finance")
    net = FinanceModel.load(run_dir).net.eval()
    graph = session(folder / "model.onnx")
    assert (folder / "scaler.json").is_file()
    generator = torch.Generator().manual_seed(5)
    for length in LENGTHS:
        for batch in BATCHES:
            x = torch.randn(batch, length, net.encoder.input_size, generator=generator)
            prior = torch.randn(batch, generator=generator)
            with torch.no_grad():
                expected = net(x, prior)
            close(run(graph, x=x, prior=prior)[0], expected)


def test_export_json_describes_the_graphs_and_their_checks(exported):
    _, folder = exported("classify")
    description = json.loads((folder / "export.json").read_text())
    assert description["format"] == "onnx" and description["task"] == "classify"
    assert isinstance(description["opset"], int)
    graph = description["graphs"]["model"]
    assert [p["name"] for p in graph["inputs"]] == ["inputs", "lengths"]
    assert graph["inputs"][0]["shape"] == ["batch", "time"]
    assert graph["outputs"][0]["dtype"] == "float32"
    sizes = {tuple(check["sizes"].values()) for check in graph["checks"]}
    assert len(sizes) == 4 and all(check["max_abs_difference"] <= ATOL
                                   for check in graph["checks"])
    onnx_inputs = session(folder / "model.onnx").get_inputs()
    assert [i.shape for i in onnx_inputs] == [["batch", "time"], ["batch"]]


# --------------------------------------------------------------------------- the layer

# name: (LSTM options, fed lengths); the plain cell exports as ONNX's LSTM operator, the
# variants as Scans (about 4 s of export each, so the variants share layers)
VARIANTS = {
    "plain": ({}, False),
    "bidirectional, 2 layers": ({"bidirectional": True, "num_layers": 2}, True),
    "peephole, layer norm, zoneout, bidirectional": (
        {"peephole": True, "layer_norm": True, "zoneout": (0.2, 0.3), "bidirectional": True},
        True),
    "projection, 2 layers": ({"proj_size": 3, "num_layers": 2}, False),
}


class Layers(nn.Module):
    """The variants fed one batch, so that one export checks them all; the plain layer
    also starts from a given state."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x, lengths, h0, c0):
        results = []
        for (name, (_, fed_lengths)), layer in zip(VARIANTS.items(), self.layers):
            state = (h0, c0) if name == "plain" else None
            output, (h_n, c_n) = layer(x, state, lengths=lengths if fed_lengths else None)
            results += [output, h_n, c_n]
        return tuple(results)


def test_exportable_lstm_matches_the_layer_for_every_variant(tmp_path):
    torch.manual_seed(0)
    lstms = [LSTM(4, 6, batch_first=True, **options).eval() for options, _ in VARIANTS.values()]
    exportables = [ExportableLSTM(lstm) for lstm in lstms]
    assert [e.as_onnx_lstm_op for e in exportables] == [True, True, False, False]
    reference = Layers(lstms)

    def inputs(length: int, batch: int, generator: torch.Generator) -> tuple:
        return (torch.randn(batch, length, 4, generator=generator),
                random_lengths(batch, length, generator),
                torch.randn(1, batch, 6, generator=generator),
                torch.randn(1, batch, 6, generator=generator))

    generator = torch.Generator().manual_seed(6)
    program = torch.onnx.export(
        Layers(exportables).eval(), inputs(5, 3, generator), dynamo=True, verbose=False,
        dynamic_shapes=({0: Dim.AUTO, 1: Dim.AUTO}, {0: Dim.AUTO}, {1: Dim.AUTO},
                        {1: Dim.AUTO}),
        input_names=["x", "lengths", "h0", "c0"])
    program.save(tmp_path / "layers.onnx")
    graph = session(tmp_path / "layers.onnx")
    for length in (1, 9):  # neither is the example's 5
        for batch in BATCHES:
            x, lengths, h0, c0 = inputs(length, batch, generator)
            got = run(graph, x=x, lengths=lengths, h0=h0, c0=c0)
            with torch.no_grad():
                expected = reference(x, lengths, h0, c0)
            for k, name in enumerate(VARIANTS):
                for part in range(3):  # output, h_n, c_n
                    index = 3 * k + part
                    np.testing.assert_allclose(got[index], expected[index].numpy(), atol=ATOL,
                                               rtol=0, err_msg=f"{name}, part {part}")


# --------------------------------------------------------------------------- the command


def test_export_command_writes_the_folder_and_replaces_it_only_when_told(trained_run,
                                                                        tmp_path, capsys):
    run_dir, out = trained_run("finance"), tmp_path / "served"
    assert main(["export", str(run_dir), "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "model.onnx: (x, prior) -> (y)" in printed and str(out) in printed
    assert "checked at batch 1, window 11: largest difference from lstmkit" in printed
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.onnx",
                                                     "scaler.json"]
    assert main(["export", str(run_dir), "--output-dir", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    (out / "stale.txt").write_text("from before")
    assert main(["export", str(run_dir), "--output-dir", str(out), "--overwrite"]) == 0
    assert not (out / "stale.txt").exists() and (out / "model.onnx").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["served"]  # no staging folder left


@pytest.mark.parametrize("case", ["experiment run", "output inside the run",
                                  "output is the run", "output holds the run", "missing run"])
def test_export_command_errors(case, trained_run, tmp_path, capsys):
    run_dir = trained_run("experiment" if case == "experiment run" else "finance")
    argv, message = {
        "experiment run": ([str(run_dir)], "is an experiment run"),
        "output inside the run": ([str(run_dir), "--output-dir", str(run_dir / "onnx")],
                                  "points into the model's run directory"),
        "output is the run": ([str(run_dir), "--output-dir", str(run_dir), "--overwrite"],
                              "points into the model's run directory"),
        "output holds the run": ([str(run_dir), "--output-dir", str(run_dir.parent),
                                  "--overwrite"], "replacing it would delete the model"),
        "missing run": ([str(tmp_path / "nowhere")], "does not exist"),
    }[case]
    before = sorted(run_dir.parent.rglob("*"))
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmkit: error:") and "Traceback" not in err
    assert message in err, err
    assert sorted(run_dir.parent.rglob("*")) == before


def test_an_unknown_format_is_refused(trained_run):
    with pytest.raises(LstmkitError, match="--format must be one of onnx"):
        export_run(trained_run("finance"), format="tflite")


def test_help_does_not_import_torch():
    code = ("import sys; from lstmkit.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
