"""Export a finished run's network to ONNX, each graph checked against lstmkit itself.

    result = export_run("runs/air")      # -> runs/air-onnx/: model.onnx, export.json, ...

Every task's network becomes one or more :class:`Graph`: a module that computes the
outputs from the inputs, and the inputs and outputs described by :class:`Port` (name,
shape with named dimensions that vary, dtype, meaning, and for inputs how to draw valid
random values). One routine, :func:`export_graph`, exports any of them with every named
dimension dynamic, and runs the graph in onnxruntime against the module's own eager
output at sizes other than the export example's. ``export.json`` describes the graphs,
the preprocessing files copied beside them and the check results.

What each task exports:

- forecast: the ensemble as one graph, (x, future, series_id) -> quantiles combined as
  Forecaster.forecast_quantiles combines them (recursive strategy: each member's one
  step, rolled out by the caller);
- classify: (inputs, lengths) -> class probabilities;
- language_model: one decoding step, (token, h, c) -> (logits, h, c);
- translation: ``encoder`` and ``decoder_step`` (beam search stays with the caller);
- finance: (x, prior) -> the network's output.

Scaling and tokenizing stay outside the graphs: their files are copied beside them.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import onnx
import onnxruntime
import torch
from torch import Tensor, nn
from torch.export import Dim

from lstmkit import __version__
from lstmkit.data.tokenizers import PAD_ID, TOKENIZER_FILE
from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_json
from lstmkit.io.rundir import (
    FinishedRun,
    check_outside_runs,
    check_writable,
    load_run,
    swap_in,
    task_of,
)
from lstmkit.serve.exportable import exportable
from lstmkit.tasks.classify import Classifier
from lstmkit.tasks.finance import FinanceModel
from lstmkit.tasks.finance.model import SCALER_FILE as FINANCE_SCALER_FILE
from lstmkit.tasks.finance.walk_forward import CLIP
from lstmkit.tasks.forecast import Forecaster
from lstmkit.tasks.forecast.forecaster import SCALER_FILE as FORECAST_SCALER_FILE
from lstmkit.tasks.language_model import LanguageModel
from lstmkit.tasks.long_range.config import TASK as EXPERIMENT_TASK
from lstmkit.tasks.translate import Translator
from lstmkit.tasks.translate.network import DecoderState, Encoded, TranslationNet
from lstmkit.tasks.translate.translator import (
    BOS,
    EOS,
    SOURCE_TOKENIZER_FILE,
    TARGET_TOKENIZER_FILE,
)

FORMATS = ("onnx",)
EXPORT_FILE = "export.json"
TOLERANCE = 1e-4
"""Largest difference between onnxruntime's and lstmkit's outputs an export accepts."""

EXAMPLE_SIZES = {"batch": 3}
EXAMPLE_SIZE = 7
"""The example an export traces has 3 rows and 7 for every other named dimension (not 0
or 1, at which the exporter would fix a dimension; and unequal, so none is tied to another)."""

CHECK_SIZES = (1, 11)
"""Each named dimension is checked at these sizes (all combinations), none the example's."""


# --------------------------------------------------------------------------- graphs

Sampler = Callable[[tuple[int, ...], dict[str, int], torch.Generator], Tensor]
"""(shape, the sizes of the named dimensions, generator) -> valid random input values."""


class Port(NamedTuple):
    """One input or output of a graph, as export.json describes it."""

    name: str
    shape: tuple[int | str, ...]  # a str names a dimension that varies ("batch", "time")
    dtype: torch.dtype
    meaning: str
    sample: Sampler | None = None  # inputs: how to draw valid values for the checks


@dataclass
class Graph:
    """A module to export: ``module(*inputs)`` returns the outputs in their order (a
    tensor or a tuple), computed with lstmkit's own layers (exported with exportable())."""

    name: str  # the file is <name>.onnx
    module: nn.Module
    inputs: list[Port]
    outputs: list[Port]


@dataclass
class Check:
    """One comparison of onnxruntime's outputs with lstmkit's, at these dimension sizes."""

    sizes: dict[str, int]
    max_abs_difference: float


@dataclass
class ExportedGraph:
    """One graph written, with its checks and its entry in export.json."""

    name: str
    file: Path
    checks: list[Check]
    description: dict[str, Any]


@dataclass
class ExportResult:
    """What :func:`export_run` wrote: the folder, the task and each graph with its checks."""

    directory: Path
    task: str
    graphs: list[ExportedGraph]
    opset: int
    files_copied: list[str]  # the run's tokenizer or scaler files


def normal(shape: tuple[int, ...], sizes: dict[str, int], generator: torch.Generator) -> Tensor:
    """Standard normal values: scaled features, states."""
    return torch.randn(shape, generator=generator)


def integers(low: int, high: int) -> Sampler:
    """Integers in [low, high): token ids in a vocabulary, series ids."""
    def sample(shape: tuple[int, ...], sizes: dict[str, int], generator: torch.Generator
               ) -> Tensor:
        return torch.randint(low, high, shape, generator=generator)
    return sample


def lengths_within(dimension: str) -> Sampler:
    """Sequence lengths (B,) from 1 to the size of ``dimension``, the first the longest."""
    def sample(shape: tuple[int, ...], sizes: dict[str, int], generator: torch.Generator
               ) -> Tensor:
        lengths = torch.randint(1, sizes[dimension] + 1, shape, generator=generator)
        lengths[0] = sizes[dimension]
        return lengths
    return sample


def positions_within_lengths(dimension: str) -> Sampler:
    """A (B, S) mask, True at the first ``length`` positions of each row."""
    lengths = lengths_within(dimension)

    def sample(shape: tuple[int, ...], sizes: dict[str, int], generator: torch.Generator
               ) -> Tensor:
        row_lengths = lengths(shape[:1], sizes, generator)
        return torch.arange(shape[1]) < row_lengths.unsqueeze(1)
    return sample


def _sample(ports: list[Port], sizes: dict[str, int], generator: torch.Generator
            ) -> tuple[Tensor, ...]:
    values = []
    for port in ports:
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in port.shape)
        values.append(port.sample(shape, sizes, generator).to(port.dtype))
    return tuple(values)


def _outputs(result: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return (result,) if isinstance(result, Tensor) else tuple(result)


# --------------------------------------------------------------------------- exporting


def export_graph(graph: Graph, directory: Path) -> ExportedGraph:
    """Export ``graph`` to ``directory/<name>.onnx`` and check it in onnxruntime against
    the module's eager output at every combination of :data:`CHECK_SIZES`; a difference
    above :data:`TOLERANCE` raises."""
    reference = graph.module.eval()
    dimensions = list(dict.fromkeys(d for p in graph.inputs for d in p.shape if isinstance(d, str)))
    generator = torch.Generator().manual_seed(0)
    example = _sample(graph.inputs, {d: EXAMPLE_SIZES.get(d, EXAMPLE_SIZE) for d in dimensions},
                      generator)
    # Dim.AUTO: named Dims and Dim.DYNAMIC let the exporter fix a length silently
    dynamic_shapes = tuple(
        {axis: Dim.AUTO for axis, d in enumerate(p.shape) if isinstance(d, str)} or None
        for p in graph.inputs)
    with _quiet_exporter():
        program = torch.onnx.export(
            _DistinctOutputs(exportable(graph.module)), example, dynamo=True, verbose=False,
            dynamic_shapes={"inputs": dynamic_shapes},  # _DistinctOutputs(*inputs)
            input_names=[p.name for p in graph.inputs],
            output_names=[p.name for p in graph.outputs],
            # onnxscript's optimiser rewrites a reshape to (N, 0) (a forecaster without
            # future features) into the invalid shape (-1, 0); onnxruntime optimises anyway
            optimize=False)
    model = program.model_proto
    _name_dimensions(model, graph)
    path = directory / f"{graph.name}.onnx"
    onnx.save_model(model, path)

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    checks = []
    for chosen in product(CHECK_SIZES, repeat=len(dimensions)):
        sizes = dict(zip(dimensions, chosen))
        inputs = _sample(graph.inputs, sizes, generator)
        got = session.run([p.name for p in graph.outputs],
                          {p.name: t.numpy() for p, t in zip(graph.inputs, inputs)})
        with torch.no_grad():
            expected = _outputs(reference(*inputs))
        difference = max(_max_abs_difference(g, e.numpy()) for g, e in zip(got, expected))
        if not difference <= TOLERANCE:
            raise RuntimeError(
                f"the exported {graph.name} differs from lstmkit's own output by {difference:.3g} "
                f"at {sizes} (more than {TOLERANCE:g}); nothing was written. This is a bug: "
                "please report it with the run's config.json")
        checks.append(Check(sizes, difference))
    description = {
        "file": path.name,
        "inputs": [_describe(p) for p in graph.inputs],
        "outputs": [_describe(p) for p in graph.outputs],
        "checks": [{"sizes": c.sizes, "max_abs_difference": c.max_abs_difference}
                   for c in checks],
    }
    return ExportedGraph(graph.name, path, checks, description)


class _DistinctOutputs(nn.Module):
    """The module's outputs, each a tensor of its own: ONNX names every output once, so
    one returned twice (dot attention's prepared keys are the encoder states) is copied."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        outputs: list[Tensor] = []
        for output in _outputs(self.module(*inputs)):
            outputs.append(output.clone() if any(output is o for o in outputs) else output)
        return tuple(outputs)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's warnings and log lines (torchvision absent, deprecations) are about
    torch's internals, not the model: keep them off the user's terminal."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _name_dimensions(model: Any, graph: Graph) -> None:
    """Give the graph's dynamic dimensions the names the ports use ("batch" for "s77")."""
    names = {}
    for value, port in zip(model.graph.input, graph.inputs):
        for dim, wanted in zip(value.type.tensor_type.shape.dim, port.shape):
            if isinstance(wanted, str):
                if not dim.dim_param:
                    raise RuntimeError(f"the exporter fixed the {wanted} dimension of "
                                       f"{graph.name}'s input {port.name} at {dim.dim_value}")
                names[dim.dim_param] = wanted
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in names:
                dim.dim_param = names[dim.dim_param]


def _max_abs_difference(got: np.ndarray, expected: np.ndarray) -> float:
    if got.shape != expected.shape:
        return float("inf")
    difference = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    return float(np.nan_to_num(difference, nan=np.inf).max())


def _describe(port: Port) -> dict[str, Any]:
    return {"name": port.name, "shape": list(port.shape),
            "dtype": str(port.dtype).removeprefix("torch."), "meaning": port.meaning}


# --------------------------------------------------------------------------- the tasks


@dataclass
class TaskExport:
    """A task's graphs, the run files that prepare their inputs, and what export.json says
    about using them."""

    graphs: list[Graph]
    preprocessing: dict[str, Any]
    notes: list[str]


class _ForecastEnsemble(nn.Module):
    """The members' quantiles combined as Forecaster.forecast_quantiles combines them:
    each member's sorted, then the element-wise median over members."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor, future: Tensor, series_id: Tensor) -> Tensor:
        per_member = torch.stack([net(x, future, series_id).sort(dim=-1).values
                                  for net in self.members])  # (M, N, H, Q)
        # torch.median (the lower middle value for an even count) has no ONNX export
        return per_member.sort(dim=0).values[(len(self.members) - 1) // 2]


class _ForecastMembers(nn.Module):
    """Each member's one step, unsorted: the recursive strategy feeds each member's own
    median back before the members are combined."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor, future: Tensor, series_id: Tensor) -> Tensor:
        return torch.stack([net(x, future, series_id) for net in self.members])  # (M, N, 1, Q)


def _forecast(forecaster: Forecaster) -> TaskExport:
    config, meta, members = forecaster.config, forecaster.meta, forecaster.members
    steps_out, quantiles = members[0].steps_out, config.quantiles
    features, future_features = meta["features"], meta["future_features"]
    # the skip term reads exactly `window` steps; without it any length runs
    window = config.window if config.skip else "window"
    inputs = [
        Port("x", ("batch", window, len(features)), torch.float32,
             f"input windows of the features {features} (the target first), each scaled as "
             f"scaler.json says for its series, then the target column normalised per window "
             f"(centre: {config.window_center}, scale: {config.window_scale}); the model was "
             f"trained on windows of {config.window} steps", normal),
        Port("future", ("batch", steps_out, len(future_features)), torch.float32,
             f"the known features {future_features} of the {steps_out} forecast step(s), "
             "scaled like x", normal),
        Port("series_id", ("batch",), torch.int64,
             f"each window's series, an index into {meta['series']}",
             integers(0, len(meta["series"]))),
    ]
    unit = ("in the window-normalised, scaled target's units: undo the window's "
            "normalisation, then scaler.json's scaling of the series")
    if config.strategy == "direct":
        module = _ForecastEnsemble(members)
        outputs = [Port("quantiles", ("batch", steps_out, len(quantiles)), torch.float32,
                        f"the quantiles {quantiles} of each of the {steps_out} steps ahead, "
                        f"the median over the {len(members)} ensemble member(s) of each "
                        f"member's sorted quantiles, {unit}")]
        notes = []
    else:
        module = _ForecastMembers(members)
        outputs = [Port("member_quantiles", (len(members), "batch", 1, len(quantiles)),
                        torch.float32,
                        f"each member's quantiles {quantiles} of the next step (unsorted), "
                        f"{unit}")]
        notes = [f"recursive strategy: the caller rolls the graph out {config.horizon} times "
                 "per member: append the member's own median (quantile 0.5) as the target, "
                 "with that step's known features, to its window and drop the first step; "
                 "then sort each member's quantiles and take the element-wise median over "
                 "members (the lower middle value for an even count)"]
    preprocessing = {
        "files": [FORECAST_SCALER_FILE], "features": features,
        "future_features": future_features,
        "series": meta["series"], "window": config.window, "horizon": config.horizon,
        "strategy": config.strategy, "quantiles": quantiles, "scaler": config.scaler,
        "window_center": config.window_center, "window_scale": config.window_scale,
        "how": "lstmkit.data.windows.make_prediction_input builds x and future from scaled "
               "series; lstmkit.data.scaling undoes both normalisations",
    }
    return TaskExport([Graph("model", module, inputs, outputs)], preprocessing, notes)


class _ClassProbabilities(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        return torch.softmax(self.net(inputs, lengths), dim=1)  # (B, C)


def _classify(classifier: Classifier) -> TaskExport:
    net, config, classes = classifier.net, classifier.config, classifier.classes
    length_meaning = ("each sequence's length in steps (1 .. time); positions past it are "
                      "padding")
    if net.embedding is not None:
        vocabulary = net.embedding.num_embeddings
        first = Port("inputs", ("batch", "time"), torch.int64,
                     f"token ids from tokenizer.json (at most {config.max_length} per text), "
                     f"padded with {PAD_ID} after each length", integers(1, vocabulary))
        preprocessing = {"files": [TOKENIZER_FILE], "max_length": config.max_length,
                         "padding_id": PAD_ID}
    else:
        features = net.encoder.input_size
        first = Port("inputs", ("batch", "time", features), torch.float32,
                     f"each sequence standardised ((value - mean) / std per feature) and cut "
                     f"into frames of {config.frame_length} consecutive steps (the last "
                     "completed by repeating the last step), padded after each length",
                     normal)
        preprocessing = {"files": [], "scaling": classifier.scaling,
                         "frame_length": config.frame_length,
                         "how": "lstmkit.tasks.classify.data.frames"}
    inputs = [first, Port("lengths", ("batch",), torch.int64, length_meaning,
                          lengths_within("time"))]
    outputs = [Port("probabilities", ("batch", len(classes)), torch.float32,
                    f"the probability of each class, in the order {classes}")]
    return TaskExport([Graph("model", _ClassProbabilities(net), inputs, outputs)],
                      preprocessing, [])


class _LanguageModelStep(nn.Module):
    """One token through LanguageModelNet with the state in and out, stacked per layer."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, token: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        state = [(h[k:k + 1], c[k:k + 1]) for k in range(len(self.net.layers))]
        output = self.net(token.unsqueeze(1), state)  # (B, 1) -> logits (B, 1, V)
        return (output.logits[:, 0], torch.cat([h for h, _ in output.state]),
                torch.cat([c for _, c in output.state]))


def _language_model(model: LanguageModel) -> TaskExport:
    net, config = model.net, model.config
    layers, H = config.num_layers, config.hidden_size
    P = config.proj_size or H
    vocabulary = net.embedding.num_embeddings
    state = "row k is layer k's; zeros before the first token"
    inputs = [Port("token", ("batch",), torch.int64, "the last token's id (tokenizer.json)",
                   integers(1, vocabulary)),
              Port("h", (layers, "batch", P), torch.float32, f"hidden state: {state}", normal),
              Port("c", (layers, "batch", H), torch.float32, f"cell state: {state}", normal)]
    outputs = [Port("logits", ("batch", vocabulary), torch.float32,
                    "unnormalised scores of the next token"),
               Port("h_next", (layers, "batch", P), torch.float32, "hidden state after it"),
               Port("c_next", (layers, "batch", H), torch.float32, "cell state after it")]
    notes = [f"feed the prompt one token at a time, then sample from softmax(logits): the "
             f"padding id {PAD_ID} never occurs in text; temperature, top-k and top-p stay "
             "with the caller"]
    return TaskExport([Graph("model", _LanguageModelStep(net), inputs, outputs)],
                      {"files": [TOKENIZER_FILE]}, notes)


class _TranslationEncoder(nn.Module):
    def __init__(self, net: TranslationNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, source: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.net.encode(source, lengths))


class _TranslationDecoderStep(nn.Module):
    """TranslationNet.step with one row per hypothesis (the caller repeats a sentence's
    encoder outputs for each of its beams)."""

    def __init__(self, net: TranslationNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, tokens: Tensor, h: Tensor, c: Tensor, feed: Tensor, states: Tensor,
                mask: Tensor, prepared: Tensor) -> tuple[Tensor, ...]:
        encoded = Encoded(states, mask, prepared, initial=h)  # a step never reads initial
        step = self.net.step(self.net.decoder.step, tokens, DecoderState(h, c, feed), encoded,
                             beams=1)
        return step.logits, step.state.h, step.state.c, step.state.feed, step.attention


def _translation(translator: Translator) -> TaskExport:
    net, config = translator.net, translator.config
    H, L = config.hidden_size, config.decoder_layers
    source_vocabulary = net.source_embedding.num_embeddings
    target_vocabulary = net.target_embedding.num_embeddings
    A = H  # the attention's queries and keys are both H wide, and so is its key term
    source_ports = [
        Port("states", ("batch", "source_length", H), torch.float32,
             "the encoder's states, 0 past each length"),
        Port("mask", ("batch", "source_length"), torch.bool, "True at real source positions"),
        Port("prepared", ("batch", "source_length", A), torch.float32,
             "the attention's key term, computed once per sentence"),
    ]
    encoder = Graph("encoder", _TranslationEncoder(net), [
        Port("source", ("batch", "source_length"), torch.int64,
             f"source token ids (source tokenizer), padded with {PAD_ID} after each length",
             integers(1, source_vocabulary)),
        Port("lengths", ("batch",), torch.int64, "each sentence's number of tokens",
             lengths_within("source_length")),
    ], [*source_ports, Port("initial", (L, "batch", H), torch.float32,
                            "the decoder's initial hidden state, per decoder layer")])
    samplers = {"states": normal, "mask": positions_within_lengths("source_length"),
                "prepared": normal}
    decoder_step = Graph("decoder_step", _TranslationDecoderStep(net), [
        Port("tokens", ("batch",), torch.int64,
             "each hypothesis's last target token (the start id first)",
             integers(1, target_vocabulary)),
        Port("h", (L, "batch", H), torch.float32, "decoder hidden state (first: initial)",
             normal),
        Port("c", (L, "batch", H), torch.float32, "decoder cell state (first: zeros)", normal),
        Port("feed", ("batch", H), torch.float32,
             "the previous attentional state (first: zeros)", normal),
        *[p._replace(meaning=f"the encoder's {p.name} of the hypothesis's sentence",
                     sample=samplers[p.name]) for p in source_ports],
    ], [
        Port("logits", ("batch", target_vocabulary), torch.float32,
             "unnormalised scores of the next target token"),
        Port("h_next", (L, "batch", H), torch.float32, "decoder hidden state after the step"),
        Port("c_next", (L, "batch", H), torch.float32, "decoder cell state after the step"),
        Port("feed_next", ("batch", H), torch.float32, "the attentional state of the step"),
        Port("attention", ("batch", "source_length"), torch.float32,
             "where the step looked: weights over the source positions"),
    ])
    target_tokenizer = translator.target_tokenizer
    bos, eos = target_tokenizer.token_to_id(BOS), target_tokenizer.token_to_id(EOS)
    files = [SOURCE_TOKENIZER_FILE] if config.shared_vocabulary else [
        SOURCE_TOKENIZER_FILE, TARGET_TOKENIZER_FILE]
    notes = [f"beam search stays with the caller: run encoder once per batch of sentences; "
             f"for K beams repeat each sentence's states, mask, prepared and initial K times "
             f"(rows b * K .. b * K + K - 1); start decoder_step from tokens = {bos} ({BOS}), "
             f"h = initial, c = 0, feed = 0; never choose ids {PAD_ID} or {bos}; a hypothesis "
             f"ends at {eos} ({EOS}); lstmkit scores with GNMT's length penalty, alpha "
             f"{config.length_penalty}, beam {config.beam_size}, at most "
             f"{config.max_output_ratio} x the source length + 10 tokens"]
    preprocessing = {"files": files, "shared_vocabulary": config.shared_vocabulary,
                     "start_id": bos, "end_id": eos, "padding_id": PAD_ID}
    return TaskExport([encoder, decoder_step], preprocessing, notes)


def _finance(model: FinanceModel) -> TaskExport:
    config, meta = model.config, model.meta
    features = meta["features"]
    prior = ("the log of the EWMA variance forecast / scaler.json's target_scale"
             if config.target == "volatility" else "0 (the prior is used by volatility only)")
    value = {"return": "y * target_scale is the return",
             "volatility": "exp(y) * target_scale is the variance",
             }.get(config.target, "sigmoid(y) is the probability of up")
    inputs = [
        Port("x", ("batch", "window", len(features)), torch.float32,
             f"each asset's last {config.window} days of the features {features}, "
             f"standardised with scaler.json's mean and std, clipped to +-{CLIP}, missing "
             f"values 0 (the model was trained on {config.window} days)", normal),
        Port("prior", ("batch",), torch.float32, prior, normal),
    ]
    outputs = [Port("y", ("batch",), torch.float32,
                    f"the {config.target} forecast {config.horizon} day(s) ahead in the "
                    f"network's units: {value}")]
    preprocessing = {"files": [FINANCE_SCALER_FILE], "features": features, "window": config.window,
                     "target": config.target, "horizon": config.horizon, "clip": CLIP,
                     "how": "lstmkit.tasks.finance.walk_forward.WindowScaler"}
    return TaskExport([Graph("model", model.net, inputs, outputs)], preprocessing, [])


_TASKS: dict[str, tuple[Any, Callable[[Any], TaskExport], tuple[str, ...]]] = {
    Forecaster.task: (Forecaster, _forecast, (FORECAST_SCALER_FILE,)),
    Classifier.task: (Classifier, _classify, (TOKENIZER_FILE,)),
    LanguageModel.task: (LanguageModel, _language_model, (TOKENIZER_FILE,)),
    Translator.task: (Translator, _translation, (SOURCE_TOKENIZER_FILE, TARGET_TOKENIZER_FILE)),
    FinanceModel.task: (FinanceModel, _finance, (FINANCE_SCALER_FILE,)),
}
"""task -> (its Task class, what it exports, the run files that prepare its inputs)."""


# --------------------------------------------------------------------------- the run


def export_run(run_dir: str | Path, out_dir: str | Path | None = None, *, format: str = "onnx",
               overwrite: bool = False) -> ExportResult:
    """Export the network of the finished run ``run_dir`` for serving without lstmkit.

    Writes ``out_dir`` (default: ``<run_dir>-onnx`` beside the run): the graphs
    (``model.onnx``, or for translation ``encoder.onnx`` and ``decoder_step.onnx``),
    the run's tokenizer or scaler files, and ``export.json``, which says what every
    input and output means and how each graph compared with lstmkit's own output in
    onnxruntime. The folder appears whole or not at all; an existing one is replaced
    only with ``overwrite``, and stays complete until the new one is ready.
    """
    run_dir = Path(run_dir)
    if format not in FORMATS:
        raise LstmkitError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    task = _task_of(run_dir)
    out = _output_dir(run_dir, out_dir, overwrite)
    cls, task_export, file_names = _TASKS[task]

    def read(run: FinishedRun) -> tuple[Any, dict[str, bytes]]:
        # the model and its files from one reading, so never from two runs
        files = {name: run.bytes(name) for name in file_names if run.has(name)}
        return cls._read(run), files

    model, files = load_run(run_dir, task, read)
    exported = task_export(model)
    # built beside the output and renamed into place when complete (mkdir, unlike
    # tempfile.mkdtemp, gives the folder the mode any other folder gets)
    staging = out.parent / f".{out.name}.{secrets.token_hex(6)}"
    staging.mkdir()
    try:
        graphs = [export_graph(graph, staging) for graph in exported.graphs]
        for name, data in files.items():
            (staging / name).write_bytes(data)
        opset = _opset(graphs[0].file)
        atomic_write_json(staging / EXPORT_FILE, {
            "format": format, "opset": opset, "lstmkit_version": __version__, "task": task,
            "run": str(run_dir.resolve()),
            "graphs": {g.name: g.description for g in graphs},
            "preprocessing": exported.preprocessing,
            "notes": exported.notes,
            "check": f"each graph ran in onnxruntime on random valid inputs at every "
                     f"combination of the sizes {list(CHECK_SIZES)} of its named dimensions "
                     f"against lstmkit's own output; the largest difference allowed is "
                     f"{TOLERANCE:g}",
        })
        if out.exists() and not overwrite:  # made by another process meanwhile
            raise _exists(out)
        swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    graphs = [ExportedGraph(g.name, out / g.file.name, g.checks, g.description) for g in graphs]
    return ExportResult(out, task, graphs, opset, sorted(files))


def _task_of(run_dir: Path) -> str:
    """The task of the finished run at ``run_dir``, which export supports."""
    task = task_of(run_dir)
    if task == EXPERIMENT_TASK:
        raise LstmkitError(f"{run_dir} is an experiment run (long-range memory): "
                           "experiments measure what an LSTM learns and have no served "
                           "model to export; export a forecast, classify, lm, translate or "
                           "finance run")
    if task not in _TASKS:
        raise LstmkitError(f"{run_dir} holds a {task!r} directory, not a model run; export "
                           "a forecast, classify, lm, translate or finance run")
    return task


def _output_dir(run_dir: Path, out_dir: str | Path | None, overwrite: bool) -> Path:
    run = run_dir.resolve()
    out = Path(out_dir) if out_dir is not None else run.parent / f"{run.name}-onnx"
    check_outside_runs(out, "--output-dir", [run_dir])
    if out.resolve() in run.parents:
        raise LstmkitError(f"--output-dir {out} holds the run {run_dir}: replacing it would "
                           "delete the model; choose another --output-dir")
    check_writable(out, "--output-dir")
    if out.exists() and not out.is_dir():
        raise LstmkitError(f"--output-dir {out} is a file; choose a folder")
    if out.exists() and not overwrite:
        raise _exists(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _exists(out: Path) -> LstmkitError:
    return LstmkitError(f"{out} already exists; pass --overwrite to replace it (the old folder "
                        "stays until the new export is complete) or choose another "
                        "--output-dir")


def _opset(path: Path) -> int:
    model = onnx.load(path, load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
