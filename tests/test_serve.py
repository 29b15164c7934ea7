"""The HTTP server: every task's answers equal the Python API's, streaming sessions equal
whole inputs, bad requests get clear 4xx JSON and leave the server serving, limits hold."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient

from lstmkit.serve.app import create_app
from lstmkit.serve.limits import Limits
from lstmkit.serve.served import load_served

SERVED_TASKS = ("forecast", "classify", "lm", "translate", "finance")


@pytest.fixture(scope="module")
def runs(trained_run, tmp_path_factory) -> dict[str, Path]:
    """The tiny run of every task, and a unidirectional classifier (it streams)."""
    from lstmkit.classify import Classifier, ClassifierConfig
    from lstmkit.train import TrainConfig

    runs = {task: trained_run(task) for task in SERVED_TASKS}
    folder = tmp_path_factory.mktemp("serve")
    config = ClassifierConfig(embedding_dim=8, hidden_size=8, bidirectional=False,
                              train=TrainConfig(epochs=4, batch_size=16, lr=0.02,
                                                patience=None, progress=False))
    Classifier(config).fit(runs["classify"].parent / "classify-data" / "data.csv",
                           folder / "stream")
    runs["stream"] = folder / "stream"
    return runs


def served_app(runs: dict[str, Path], limits: Limits | None = None, token: str | None = None):
    limits = limits or Limits()
    return create_app([load_served(name, run, limits) for name, run in runs.items()],
                      limits, token)


@pytest.fixture(scope="module")
def client(runs) -> TestClient:
    return TestClient(served_app(runs))


def data_file(runs: dict[str, Path], task: str, name: str) -> Path:
    return runs[task].parent / f"{task}-data" / name


def test_metadata_and_health(client):
    assert client.get("/v1/health").json()["status"] == "ok"
    models = {m["name"]: m for m in client.get("/v1/models").json()}
    assert set(models) == {*SERVED_TASKS, "stream"}
    assert models["forecast"]["horizon"] == 6 and models["stream"]["streaming"]
    assert not models["classify"]["streaming"]  # bidirectional: needs the whole input
    assert client.get("/v1/models/lm").json()["task"] == "lm"
    assert "/v1/models/{name}/forecast" in client.get("/openapi.json").json()["paths"]


def test_answers_equal_the_python_api(client, runs):
    from lstmkit.classify import Classifier
    from lstmkit.finance import FinanceModel
    from lstmkit.forecast import Forecaster
    from lstmkit.lm import LanguageModel
    from lstmkit.translate import Translator

    history = data_file(runs, "forecast", "data.csv")
    answer = client.post("/v1/models/forecast/forecast", json={"csv": history.read_text()})
    expected = Forecaster.load(runs["forecast"]).predict(history)
    assert np.allclose([r["forecast"] for r in answer.json()["forecast"]], expected["forecast"])
    rows = pd.read_csv(history).to_dict(orient="records")
    short = client.post("/v1/models/forecast/forecast", json={"rows": rows, "horizon": 2})
    assert [r["forecast"] for r in short.json()["forecast"]] == pytest.approx(
        list(expected["forecast"][:2]))

    texts = ["great cat sat", "the dog ran on the mat"]
    answer = client.post("/v1/models/classify/classify", json={"texts": texts}).json()
    expected = Classifier.load(runs["classify"]).predict_proba(texts)
    assert np.allclose([[p["probabilities"][c] for c in ("neg", "pos")]
                        for p in answer["predictions"]], expected, atol=1e-6)

    answer = client.post("/v1/models/translate/translate", json={"sentences": ["three one"]})
    assert answer.json()["translations"] == [Translator.load(runs["translate"])
                                             .translate("three one")]

    prices = data_file(runs, "finance", "prices.csv")
    answer = client.post("/v1/models/finance/finance", json={"csv": prices.read_text()})
    expected = FinanceModel.load(runs["finance"]).predict(prices)
    assert np.allclose([r["forecast"] for r in answer.json()["forecast"]], expected["forecast"])

    request = {"prompt": "def ", "max_tokens": 30, "seed": 3}
    text = LanguageModel.load(runs["lm"]).generate("def ", max_tokens=30, seed=3)
    whole = client.post("/v1/models/lm/generate", json={**request, "stream": False})
    assert whole.json()["text"] == text
    events = client.post("/v1/models/lm/generate", json=request).text.split("\n\n")
    pieces = [json.loads(e[len("data: "):])["text"] for e in events if e.startswith("data: {\"")]
    assert "".join(pieces) == text and "event: end" in events[-2]


def test_sessions_answer_as_whole_inputs(client):
    whole = client.post("/v1/models/stream/classify",
                        json={"texts": ["great cat sat on the mat"]}).json()["predictions"][0]
    opened = client.post("/v1/models/stream/sessions", json={"text": "great cat"}).json()
    session = opened["session"]
    client.post(f"/v1/sessions/{session}", json={"text": "sat on", "gates": True})
    last = client.post(f"/v1/sessions/{session}", json={"text": "the mat"}).json()
    assert last["steps"] == 6 and last["label"] == whole["label"]
    for name, p in whole["probabilities"].items():
        assert last["probabilities"][name] == pytest.approx(p, abs=1e-5)

    text = "def a(x):\n    return"
    explained = client.post("/v1/models/lm/explain", json={"text": text}).json()
    session = client.post("/v1/models/lm/sessions").json()["session"]
    answers = [client.post(f"/v1/sessions/{session}", json={"text": piece, "gates": gates})
               .json() for piece, gates in (("def a", False), ("(x):\n", True),
                                             ("    return", False))]
    assert len(answers[1]["gates"]["forget"]) == len("(x):\n")
    for got, wanted in zip(answers[-1]["next"], explained["next"]):
        assert got["token"] == wanted["token"] and got["p"] == pytest.approx(wanted["p"], 1e-4)
    assert client.delete(f"/v1/sessions/{session}").json()["pushes"] == 3
    gone = client.post(f"/v1/sessions/{session}", json={"text": "x"})
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "unknown_session"


def test_explain_gives_gates_for_every_explorer_task(client, runs):
    inputs = {"forecast": {"csv": data_file(runs, "forecast", "data.csv").read_text()},
              "classify": {"text": "great dog"}, "lm": {"text": "def b"},
              "translate": {"text": "two one"}}
    for name, body in inputs.items():
        answer = client.post(f"/v1/models/{name}/explain", json=body).json()
        gates = answer["gates"]
        steps = len(answer["steps"])
        for gate in ("forget", "input", "output"):
            values = np.asarray(gates[gate])
            assert values.shape == (steps, len(gates["units"]))
            assert ((values >= 0) & (values <= 1)).all()
    assert answer["attention"]["columns"] == answer["steps"]  # the translator's
    forecast = client.post("/v1/models/forecast/explain", json=inputs["forecast"]).json()
    assert len(forecast["steps"]) == 12 and len(forecast["series"]["forecast"]) == 6


@pytest.mark.parametrize("path, body, status, code", [
    ("/v1/models/forecast/forecast", b'{"rows": [', 400, "malformed_json"),
    ("/v1/models/forecast/forecast", {"rows": [], "csv": "a"}, 422, "invalid_request"),
    ("/v1/models/forecast/forecast", {"rowz": []}, 422, "invalid_request"),
    ("/v1/models/forecast/forecast", {"csv": "month,sales\n2020-01-01,1\n"}, 422, "bad_input"),
    ("/v1/models/forecast/forecast", {"csv": "x", "horizon": 99}, 422, "horizon_too_long"),
    ("/v1/models/classify/classify", {"texts": "great"}, 422, "invalid_request"),
    ("/v1/models/classify/classify", {"sequences": [[1.0]]}, 422, "bad_input"),
    ("/v1/models/classify/classify", {"texts": ["a"] * 300}, 413, "too_many_items"),
    ("/v1/models/lm/generate", {"prompt": "d", "max_tokens": 10 ** 6}, 422, "too_many_tokens"),
    ("/v1/models/lm/generate", {"prompt": "d", "temperature": -1}, 422, "invalid_request"),
    ("/v1/models/nothing/forecast", {"csv": "x"}, 404, "unknown_model"),
    ("/v1/models/lm/forecast", {"csv": "x"}, 400, "wrong_task"),
    ("/v1/models/classify/sessions", None, 400, "not_streaming"),
    ("/v1/models/forecast/sessions", None, 400, "wrong_task"),
    ("/v1/sessions/no-such-session", {"text": "a"}, 404, "unknown_session"),
    ("/v1/models/finance/explain", {"text": "a"}, 400, "wrong_task"),
    ("/v2/anything", {}, 404, "not_found"),
])
def test_bad_requests_get_clear_errors(client, path, body, status, code):
    if isinstance(body, bytes):
        answer = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        answer = client.post(path, json=body)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and len(error["message"]) > 10
    assert client.get("/v1/health").status_code == 200  # still serving


def test_body_size_is_limited_declared_or_chunked(runs):
    client = TestClient(served_app({"classify": runs["classify"]}, Limits(max_body_bytes=200)))
    big = {"texts": ["great cat " * 30]}
    answer = client.post("/v1/models/classify/classify", json=big)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "body_too_large"
    chunks = iter([b'{"texts": ["', b"great " * 60, b'"]}'])
    answer = client.post("/v1/models/classify/classify", content=chunks,
                         headers={"content-type": "application/json"})
    assert answer.status_code == 413
    small = client.post("/v1/models/classify/classify", json={"texts": ["great cat"]})
    assert small.status_code == 200


def test_sessions_are_bounded_and_expire(runs):
    app = served_app({"stream": runs["stream"]}, Limits(max_sessions=50, session_ttl=60))
    now = [0.0]
    app.state.sessions.clock = lambda: now[0]  # the test's clock, not the machine's speed
    client = TestClient(app)
    opened = [client.post("/v1/models/stream/sessions").json()["session"] for _ in range(50)]
    refused = client.post("/v1/models/stream/sessions")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_sessions"
    client.delete(f"/v1/sessions/{opened[0]}")
    assert client.post("/v1/models/stream/sessions").status_code == 200
    now[0] += 30
    assert client.post(f"/v1/sessions/{opened[2]}", json={"text": "great"}).status_code == 200
    now[0] += 31  # 61 s after opening: all but the one pushed to at 30 s have expired
    expired = client.post(f"/v1/sessions/{opened[1]}", json={"text": "great"})
    assert expired.status_code == 404 and expired.json()["error"]["code"] == "session_expired"
    assert len(app.state.sessions) == 1  # swept: memory does not grow with sessions past
    assert client.post(f"/v1/sessions/{opened[2]}", json={"text": "cat"}).status_code == 200
    assert client.post("/v1/models/stream/sessions").status_code == 200


def test_token_is_required_when_set(runs):
    client = TestClient(served_app({"lm": runs["lm"]}, token="s3cret"))
    assert client.get("/v1/health").status_code == 200
    assert client.get("/").status_code == 200
    refused = client.get("/v1/models")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    wrong = client.get("/v1/models", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    assert client.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_concurrent_forecasts_each_get_their_own(runs):
    app = served_app({"forecast": runs["forecast"]})
    history = data_file(runs, "forecast", "data.csv").read_text()
    lines = history.splitlines()
    # eight different histories: each request must get its own forecast back
    bodies = [{"csv": "\n".join(lines[:len(lines) - k])} for k in range(8)]

    async def send_all():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*(client.post("/v1/models/forecast/forecast", json=b)
                                          for b in bodies))

    answers = asyncio.run(send_all())
    assert app.state.models["forecast"].batcher.rows == 8
    alone = TestClient(served_app({"forecast": runs["forecast"]}))
    for body, answer in zip(bodies, answers):
        expected = alone.post("/v1/models/forecast/forecast", json=body).json()["forecast"]
        got = answer.json()["forecast"]
        assert [r["time"] for r in got] == [r["time"] for r in expected]
        assert [r["q0.9"] for r in got] == pytest.approx([r["q0.9"] for r in expected])


def test_requests_waiting_together_share_one_call():
    from lstmkit.serve.batching import MicroBatcher

    calls = []

    def double(x):
        calls.append(len(x))
        return 2 * x

    batcher = MicroBatcher(double, max_batch=5)

    async def run():
        rows = [torch.full((k % 2 + 1, 3), float(k)) for k in range(6)]
        return rows, await asyncio.gather(*(batcher.run(r) for r in rows))

    rows, answers = asyncio.run(run())
    for row, answer in zip(rows, answers):  # each caller gets its own rows back
        assert torch.equal(answer, 2 * row)
    assert calls == [4, 5]  # 9 rows waiting together, in order: calls of at most 5 rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serves_until_stopped(runs, tmp_path):
    port = free_port()
    token_file = tmp_path / "token"
    token_file.write_text("tok\n")
    server = subprocess.Popen(
        [sys.executable, "-m", "lstmkit", "serve", f"air={runs['forecast']}", "--port",
         str(port), "--token-file", str(token_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{base}/v1/health", timeout=1)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        body = json.dumps({"csv": data_file(runs, "forecast", "data.csv").read_text()})
        request = urllib.request.Request(
            f"{base}/v1/models/air/forecast", data=body.encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer tok"})
        answer = json.load(urllib.request.urlopen(request, timeout=30))
        assert len(answer["forecast"]) == 6
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "serving air (forecast" in output


@pytest.mark.parametrize("arguments, message", [
    (["serve", "{missing}"], "does not exist"),
    (["serve", "{data}"], "not an lstmkit run directory"),
    (["serve", "{run}", "--token-file", "{missing}"], "cannot be read"),
    (["serve", "{run}", "--max-sessions", "0"], "--max-sessions must be a positive"),
    (["serve", "a={run}", "a={run}"], "two runs are named 'a'"),
])
def test_cli_refuses_bad_arguments(runs, tmp_path, arguments, message):
    values = {"missing": tmp_path / "missing", "data": data_file(runs, "forecast", "."),
              "run": runs["forecast"]}
    arguments = [a.format(**values) for a in arguments]
    result = subprocess.run([sys.executable, "-m", "lstmkit", *arguments],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_concurrent_session_steps_share_one_step(runs):
    app = served_app({"lm": runs["lm"]})
    served = app.state.models["lm"]
    prefixes = ["def a", "def b(", "return", "x", "def c(y):", "   ", "a(x)", "d"]

    async def push_all(client, sessions, text):
        return await asyncio.gather(*(client.post(f"/v1/sessions/{s}", json={"text": text})
                                      for s in sessions))

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            sessions = [(await client.post("/v1/models/lm/sessions", json={"text": p}))
                        .json()["session"] for p in prefixes]
            calls = served.steps.batcher.calls
            answers = await push_all(client, sessions, ":")
            return answers, served.steps.batcher.calls - calls

    answers, calls = asyncio.run(run())
    assert calls < len(prefixes)  # the eight one-token pushes shared step calls
    client = TestClient(app)
    for prefix, answer in zip(prefixes, answers):
        alone = client.post("/v1/models/lm/explain", json={"text": prefix + ":"}).json()
        assert [g["token"] for g in answer.json()["next"]] == [g["token"] for g in alone["next"]]
