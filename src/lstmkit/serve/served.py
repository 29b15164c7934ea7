"""The models a server answers with: one adapter per task, over the task's own API.

Each adapter loads a finished run with its task's ``load`` and answers the request
families its task has (``actions``): the answers are those of the Python API, so a
served forecast is the forecast ``lstmkit forecast predict`` prints. Input errors come
back from the task's own checks (LstmkitError) and become 422 answers.

Streaming sessions exist for models that carry a state from step to step: language
models and unidirectional classifiers. A session holds the LSTM's (h, c) and advances
it with the layer's streaming step (lstmkit.nn.LSTM.streaming_step: the native kernel's
one-step call, microseconds per step). Forecasters and financial models read a fixed
window of history, so they answer whole requests instead.
"""

from __future__ import annotations

import asyncio
import importlib
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lstmkit.errors import LstmkitError
from lstmkit.io.rundir import task_of
from lstmkit.serve.batching import MicroBatcher, StepBatcher
from lstmkit.serve.gates import gate_view
from lstmkit.serve.limits import Limits, RequestError
from lstmkit.serve.schemas import (
    ClassifyBody,
    ExplainBody,
    ForecastBody,
    GenerateBody,
    PushBody,
    TableBody,
    TranslateBody,
)

TOP_NEXT = 5  # next-token candidates a language model's answers list


class ServedModel:
    """A loaded run and the requests it answers (``actions``: endpoint names)."""

    task = ""  # the command group's name (lstmkit forecast, classify, lm, ...)
    run_task = ""  # the name run directories of the task carry
    api = ("", "")  # (module, class) of the task: imported when a run of it is served
    actions: tuple[str, ...] = ()
    streaming = False

    def __init__(self, name: str, run_dir: Path, model: Any, limits: Limits) -> None:
        self.name, self.run_dir, self.model, self.limits = name, run_dir, model, limits
        # served models never train: without gradients nothing records a graph, in any
        # thread and across the awaits of a request (no_grad is per thread, per block)
        for network in self.networks():
            network.eval().requires_grad_(False)

    def networks(self) -> list[torch.nn.Module]:
        return [self.model.net]

    @classmethod
    def load(cls, name: str, run_dir: Path, limits: Limits) -> ServedModel:
        module, kind = cls.api
        task = getattr(importlib.import_module(module), kind)
        return cls(name, run_dir, task.load(run_dir), limits)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task, "run": str(self.run_dir),
                "actions": list(self.actions), "streaming": self.streaming,
                **self.describe()}

    def describe(self) -> dict[str, Any]:
        return {}

    def _check_count(self, count: int, what: str) -> None:
        if count > self.limits.max_items:
            raise RequestError(413, "too_many_items",
                               f"{count} {what} in one request; the server takes at most "
                               f"{self.limits.max_items} (--max-items): split the request")


def load_served(name: str, run_dir: str | Path, limits: Limits) -> ServedModel:
    """The run at ``run_dir`` as a ServedModel of its task."""
    run_dir = Path(run_dir)
    task = task_of(run_dir)
    kinds = {kind.run_task: kind for kind in (ServedForecaster, ServedClassifier,
                                          ServedLanguageModel, ServedTranslator,
                                          ServedFinanceModel)}
    if task not in kinds:
        raise LstmkitError(f"{run_dir} is a {task!r} run, which the server does not answer "
                           f"for; serve runs of lstmkit forecast, classify, lm, translate or "
                           "finance")
    return kinds[task].load(name, run_dir, limits)


def read_table(body: TableBody | ExplainBody) -> pd.DataFrame:
    """The posted table as a DataFrame, as the file would have read."""
    if body.csv is not None:
        try:
            return pd.read_csv(io.StringIO(body.csv))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError) as error:
            raise LstmkitError(f"the posted csv cannot be read: {error}") from None
    if not body.rows:
        raise LstmkitError("the posted table has no rows")
    return pd.DataFrame(body.rows)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON-ready rows: dates as _time_labels writes them, NaN as null."""
    columns: dict[str, list] = {}
    for name, values in frame.items():
        if pd.api.types.is_datetime64_any_dtype(values):
            columns[name] = _time_labels(pd.DatetimeIndex(values))
        elif pd.api.types.is_float_dtype(values):
            columns[name] = [None if v != v else v for v in values.tolist()]
        else:
            columns[name] = values.tolist()
    return [dict(zip(columns, row)) for row in zip(*columns.values())]


# --------------------------------------------------------------------------- forecasting


class ServedForecaster(ServedModel):
    task = "forecast"
    run_task = "forecast"
    actions = ("forecast", "explain")
    api = ("lstmkit.forecast", "Forecaster")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # concurrent requests share network calls (see lstmkit.serve.batching)
        self.batcher = MicroBatcher(self.model.network_quantiles)
        # reading a history is pandas work that holds Python's lock: one thread does it,
        # as several would only take the lock from one another
        self.preparation = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-input")

    def networks(self) -> list[torch.nn.Module]:
        return self.model.members

    def describe(self) -> dict[str, Any]:
        config, meta = self.model.config, self.model.meta
        return {"target": meta["target"], "series": meta["series"], "freq": meta["freq"],
                "features": meta["features"], "horizon": config.horizon,
                "window": config.window, "quantiles": config.quantiles,
                "time_column": config.time}

    async def forecast(self, body: ForecastBody) -> dict[str, Any]:
        horizon = self._horizon(body.horizon)
        inputs = await asyncio.get_running_loop().run_in_executor(
            self.preparation, lambda: self.model.prediction_input(read_table(body)))
        quantiles = await self.batcher.run(inputs.x, inputs.future, inputs.series_id)
        table = self.model.forecast_frame(*self.model.to_data_units(inputs, quantiles))
        if horizon < self.model.config.horizon:
            table = table.groupby("series", sort=False).head(horizon)
        return {"model": self.name, "forecast": _records(table)}

    def _horizon(self, horizon: int | None) -> int:
        limit = self.model.config.horizon
        if horizon is not None and horizon > limit:
            raise RequestError(422, "horizon_too_long",
                               f"horizon {horizon} is longer than the model's {limit}; ask for "
                               f"at most {limit} steps or train with a longer --horizon")
        return horizon or limit

    def explain(self, body: ExplainBody) -> dict[str, Any]:
        model = self.model
        if body.csv is None and body.rows is None:
            raise RequestError(422, "wrong_input", "a forecaster explains a history: send "
                                                   "'csv' or 'rows'")
        data = model.config.load(read_table(body))
        inputs = model.prediction_input(data)
        table = model.forecast_frame(*model.to_data_units(
            inputs, model.network_quantiles(inputs.x, inputs.future, inputs.series_id)))
        first = data.series[0]
        net = model.members[0]
        x = net.encoder_input(inputs.x[:1], inputs.series_id[:1])  # (1, L, F + E)
        _, gates = gate_view(net.encoder, lambda: net.encoder(x))
        window = model.config.window
        shown = min(len(first.target), 4 * window)
        return {
            "model": self.name, "task": self.task,
            "summary": f"{model.config.horizon}-step forecast of '{first.name}' from its last "
                       f"{window} points (gates of member 1 of {len(model.members)})",
            "steps": _time_labels(first.time[-window:]),
            "gates": gates, "attention": None,
            "series": {"name": first.name, "time": _time_labels(first.time[-shown:]),
                       "values": first.target[-shown:].tolist(),
                       "forecast": _records(table[table["series"] == first.name])},
        }


def _time_labels(times: pd.Index) -> list[str]:
    """Times as text: dates alone when every time is at midnight."""
    if isinstance(times, pd.DatetimeIndex) and (times == times.normalize()).all():
        return list(times.strftime("%Y-%m-%d"))
    return [str(t) for t in times]


# --------------------------------------------------------------------------- classification


class ServedClassifier(ServedModel):
    task = "classify"
    run_task = "classify"
    actions = ("classify", "explain", "sessions")
    api = ("lstmkit.classify", "Classifier")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        encoder = self.lstm = self.model.net.encoder
        self.streaming = not encoder.bidirectional
        if self.streaming:  # one streaming step for every session (it holds the weights)
            self.step = encoder.streaming_step()
            self.steps = StepBatcher(self.step, encoder.num_layers, encoder.hidden_size,
                                     encoder.output_size)

    def describe(self) -> dict[str, Any]:
        config = self.model.config
        return {"classes": self.model.classes, "data": config.data,
                "pooling": config.pooling}

    def classify(self, body: ClassifyBody) -> dict[str, Any]:
        inputs = body.texts if body.texts is not None else body.sequences
        self._check_count(len(inputs), "inputs")
        if body.texts is not None:
            self._check_steps(max((len(t) for t in body.texts), default=0), "characters")
        probabilities = self.model.predict_proba(inputs)
        classes = self.model.classes
        return {"model": self.name, "predictions": [
            {"label": classes[int(row.argmax())],
             "probabilities": dict(zip(classes, np.round(row, 6).tolist()))}
            for row in probabilities]}

    def _check_steps(self, steps: int, what: str) -> None:
        if steps > self.limits.max_steps:
            raise RequestError(413, "input_too_long",
                               f"an input of {steps} {what}; the server takes at most "
                               f"{self.limits.max_steps} (--max-steps)")

    def explain(self, body: ExplainBody) -> dict[str, Any]:
        example = body.text if body.text is not None else body.sequence
        if example is None:
            raise RequestError(422, "wrong_input", "a classifier explains one 'text' or one "
                                                   "'sequence'")
        if body.text is not None:
            self._check_steps(len(body.text), "characters")
        explanation = self.model.explain(example if body.text is not None
                                         else np.asarray(example, dtype=np.float64),
                                         top_units=32)
        best = max(explanation.probabilities, key=explanation.probabilities.get)
        gates = {name: np.round(values.astype(np.float64), 4).tolist()
                 for name, values in explanation.gates.items()}
        gates.update(units=explanation.units, layer=self.model.net.encoder.num_layers - 1,
                     cell=np.round(explanation.cells.astype(np.float64), 4).tolist())
        attention = explanation.attention
        return {
            "model": self.name, "task": self.task,
            "summary": f"{best} (p = {explanation.probabilities[best]:.3f})",
            "probabilities": explanation.probabilities,
            "steps": explanation.tokens, "gates": gates,
            "attention": None if attention is None else {
                "rows": ["pooling"], "columns": explanation.tokens,
                "weights": [np.round(attention.astype(np.float64), 4).tolist()]},
        }

    def open_stream(self) -> ClassifierStream:
        if not self.streaming:
            raise RequestError(400, "not_streaming",
                               f"model {self.name!r} reads each sequence in both directions, so "
                               "it cannot answer before the sequence ends; classify whole "
                               "inputs with POST /v1/models/NAME/classify")
        return ClassifierStream(self)


class LSTMStream:
    """A session's LSTM state, advanced by its served model's one shared step.

    The served model has ``lstm`` (the layer), ``step`` (its streaming step) and
    ``steps`` (a StepBatcher over it)."""

    def __init__(self, served: Any) -> None:
        self.served = served
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None

    async def advance(self, x: torch.Tensor, gates: bool
                      ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any] | None]:
        """Steps x (T, I) -> (outputs (T, P), the StepBatcher's head row or None, the gate
        view when ``gates``); the state moves on."""
        served = self.served
        if gates:  # the layer's own call, its gates recorded
            (output, self.state), view = gate_view(
                served.lstm, lambda: served.lstm(x[None], self.state))
            return output[0], None, view
        if len(x) == 1:  # one step: batched with the other sessions' steps
            output, head, self.state = await served.steps.step(x, self.state)
            return output, head, None
        outputs = []
        for x_t in x.split(1):  # (1, I)
            h_t, self.state = served.step(x_t, self.state)
            outputs.append(h_t)
        return torch.cat(outputs), None, None


class ClassifierStream(LSTMStream):
    """The class probabilities of everything pushed so far, updated step by step."""

    def __init__(self, served: ServedClassifier) -> None:
        super().__init__(served)
        self.net = served.model.net
        self.outputs: list[torch.Tensor] = []  # (T, P) per push: pooling reads them all

    async def push(self, body: PushBody) -> dict[str, Any]:
        served = self.served
        x = self._inputs(body)  # (T, F)
        served._check_steps(sum(map(len, self.outputs)) + len(x), "steps in the session")
        output, _, view = await self.advance(x, body.gates)
        # a copy: a batched step's output is a view that would keep the whole batch alive
        self.outputs.append(output.clone())
        outputs = torch.cat(self.outputs)[None]  # (1, T, P)
        pooled = self.net.pool(outputs, torch.tensor([outputs.shape[1]]), self.state[0])
        probabilities = torch.softmax(self.net.head(pooled.features), dim=1)[0]
        classes = served.model.classes
        rounded = np.round(probabilities.double().numpy(), 6).tolist()
        answer: dict[str, Any] = {"steps": outputs.shape[1],
                                  "label": classes[int(probabilities.argmax())],
                                  "probabilities": dict(zip(classes, rounded))}
        if view is not None:
            answer["gates"] = view
        return answer

    def _inputs(self, body: PushBody) -> torch.Tensor:
        model = self.served.model
        if model.config.data == "text":
            if body.text is None:
                raise RequestError(422, "wrong_input", "this model reads text: push 'text'")
            ids = model.tokenizer.encode(body.text)
            if not ids:
                raise RequestError(422, "wrong_input", "the pushed text gives no tokens")
            return self.net.embedding(torch.tensor(ids))  # (T, E)
        if body.values is None:
            raise RequestError(422, "wrong_input", "this model reads numbers: push 'values' "
                                                   "(steps x features)")
        if model.config.frame_length != 1:
            raise RequestError(400, "not_streaming", "this model reads frames of "
                                                     f"{model.config.frame_length} steps; "
                                                     "classify whole sequences instead")
        return model.encode(model.read([np.asarray(body.values)], labelled=False).inputs)[0]


# --------------------------------------------------------------------------- language models


class ServedLanguageModel(ServedModel):
    task = "lm"
    run_task = "language_model"
    actions = ("generate", "explain", "sessions")
    streaming = True
    api = ("lstmkit.lm", "LanguageModel")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        stack = self.lstm = self.model.net.stacked_lstm().eval()  # one module, one step
        stack.requires_grad_(False)
        self.step = stack.streaming_step()  # shared by every session (it holds the weights)
        self.steps = StepBatcher(self.step, stack.num_layers, stack.hidden_size,
                                 stack.output_size, head=self.guesses)
        tokenizer = self.model.tokenizer
        self.token_texts = [tokenizer.decode([k]) for k in range(tokenizer.vocab_size)]

    def describe(self) -> dict[str, Any]:
        return {"tokenizer": self.model.tokenizer.kind,
                "vocab_size": self.model.tokenizer.vocab_size}

    def generate(self, body: GenerateBody) -> Iterator[str]:
        if body.max_tokens > self.limits.max_tokens:
            raise RequestError(422, "too_many_tokens",
                               f"max_tokens {body.max_tokens} is above the server's limit of "
                               f"{self.limits.max_tokens} (--max-tokens)")
        return self.model.stream(body.prompt, body.max_tokens, body.temperature, body.top_k,
                                 body.top_p, body.seed, body.stop)

    def next_tokens(self, hidden: torch.Tensor) -> list[dict[str, Any]]:
        """The likeliest next tokens after top-layer output ``hidden`` (P,)."""
        return self.named_guesses(self.guesses(hidden[None])[0])

    def guesses(self, hidden: torch.Tensor) -> torch.Tensor:
        """Top-layer outputs (B, P) -> (B, 2K): the K likeliest next tokens' probabilities,
        then their ids (as floats, so one tensor carries both)."""
        net = self.model.net
        top = net.decoder(net.projection(hidden)).softmax(dim=-1).topk(TOP_NEXT)
        return torch.cat([top.values, top.indices.to(top.values.dtype)], dim=1)

    def named_guesses(self, guesses: torch.Tensor) -> list[dict[str, Any]]:
        """One row of :meth:`guesses` as [{"token": text, "p": probability}, ...]."""
        values = guesses.tolist()
        return [{"token": self.token_texts[int(k)], "p": round(p, 6)}
                for p, k in zip(values[:TOP_NEXT], values[TOP_NEXT:])]

    def embed(self, ids: list[int]) -> torch.Tensor:
        """Token ids -> their embeddings (T, E); one token by slicing (no index tensor)."""
        table = self.model.net.embedding.weight
        return table[ids[0]:ids[0] + 1] if len(ids) == 1 else table[torch.tensor(ids)]

    def token_ids(self, text: str) -> list[int]:
        ids = self.model.tokenizer.encode(text)
        if not ids:
            raise RequestError(422, "wrong_input", "the text gives no tokens; send some text")
        if len(ids) > self.limits.max_steps:
            raise RequestError(413, "input_too_long",
                               f"{len(ids)} tokens at once; the server takes at most "
                               f"{self.limits.max_steps} (--max-steps)")
        return ids

    @torch.no_grad()
    def explain(self, body: ExplainBody) -> dict[str, Any]:
        if body.text is None:
            raise RequestError(422, "wrong_input", "a language model explains a 'text'")
        ids = self.token_ids(body.text)
        x = self.model.net.embedding(torch.tensor([ids]))  # (1, T, E)
        (output, _), gates = gate_view(self.lstm, lambda: self.lstm(x))
        tokenizer = self.model.tokenizer
        following = self.next_tokens(output[0, -1])
        return {"model": self.name, "task": self.task,
                "summary": "next: " + ", ".join(f"{t['token']!r} {t['p']:.2f}"
                                                for t in following[:3]),
                "next": following, "steps": [tokenizer.decode([i]) for i in ids],
                "gates": gates, "attention": None}

    def open_stream(self) -> LanguageModelStream:
        return LanguageModelStream(self)


class LanguageModelStream(LSTMStream):
    """The model reading a text piece by piece: its next-token guess after each push."""

    async def push(self, body: PushBody) -> dict[str, Any]:
        served = self.served
        if body.text is None:
            raise RequestError(422, "wrong_input", "a language model reads text: push 'text'")
        x = served.embed(served.token_ids(body.text))  # (T, E)
        output, guesses, view = await self.advance(x, body.gates)
        # a batched step guessed the next token with the other sessions' guesses
        following = (served.named_guesses(guesses[0]) if guesses is not None
                     else served.next_tokens(output[-1]))
        return {"next": following} if view is None else {"gates": view, "next": following}


# --------------------------------------------------------------------------- translation


class ServedTranslator(ServedModel):
    task = "translate"
    run_task = "translation"
    actions = ("translate", "explain")
    api = ("lstmkit.translate", "Translator")

    def describe(self) -> dict[str, Any]:
        config = self.model.config
        return {"source_language": config.source_language,
                "target_language": config.target_language, "beam_size": config.beam_size}

    def translate(self, body: TranslateBody) -> dict[str, Any]:
        self._check_count(len(body.sentences), "sentences")
        options = {} if body.beam_size is None else {"beam_size": body.beam_size}
        return {"model": self.name,
                "translations": self.model.translate(list(body.sentences), **options)}

    @torch.no_grad()
    def explain(self, body: ExplainBody) -> dict[str, Any]:
        if body.text is None:
            raise RequestError(422, "wrong_input", "a translator explains a 'text' (a "
                                                   "sentence)")
        alignment = self.model.align(body.text)
        net = self.model.net.eval()
        source_tokenizer = self.model.source_tokenizer
        ids = torch.tensor([source_tokenizer.encode(body.text.strip())])
        _, gates = gate_view(net.encoder, lambda: net.encode(ids, torch.tensor([ids.shape[1]])))
        return {"model": self.name, "task": self.task,
                "summary": alignment.translation or "(the translation is empty)",
                "translation": alignment.translation, "steps": alignment.source_pieces,
                "gates": gates,
                "attention": {"rows": alignment.target_pieces,
                              "columns": alignment.source_pieces,
                              "weights": np.round(alignment.weights.double().numpy(), 4).tolist()}}


# --------------------------------------------------------------------------- finance


class ServedFinanceModel(ServedModel):
    task = "finance"
    run_task = "finance"
    actions = ("finance",)
    api = ("lstmkit.finance", "FinanceModel")

    def describe(self) -> dict[str, Any]:
        config = self.model.config
        return {"target": config.target, "horizon": config.horizon, "window": config.window}

    def finance(self, body: TableBody) -> dict[str, Any]:
        return {"model": self.name, "forecast": _records(self.model.predict(read_table(body)))}
