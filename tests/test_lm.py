"""Language models: token streams, training, metrics, generation, inspection, transfer, CLI."""

import json
import math
import os
from collections import Counter

import numpy as np
import pytest
import torch

from lstmkit.cli import main
from lstmkit.data.token_stream import (
    ContiguousBatches,
    Corpus,
    TokenStream,
    cached_stream,
    corpus_files,
    evaluation_windows,
)
from lstmkit.data.tokenizers import build_tokenizer
from lstmkit.errors import LstmkitError
from lstmkit.io.rundir import open_run, write_config
from lstmkit.lm import (
    CrossEntropy,
    LanguageModel,
    LanguageModelConfig,
    LanguageModelNet,
    StreamLoss,
    next_token_probabilities,
    pretrained_encoder,
)
from lstmkit.nn import LSTM
from lstmkit.report.cell_activations import find_interesting_units, text_features
from lstmkit.train import TrainConfig


def code_text(lines: int, seed: int = 0) -> str:
    """Python-like lines with strings, brackets, comments and indentation."""
    generator = np.random.default_rng(seed)
    names = ["alpha", "beta", "gamma", "delta"]
    out = []
    for _ in range(lines):
        a, b = generator.choice(names, 2)
        kind = generator.integers(3)
        if kind == 0:
            out.append(f'{a} = call("{b}", [{generator.integers(10)}])  # note\n')
        elif kind == 1:
            out.append(f"if {a}:\n    return {b}\n")
        else:
            out.append(f"def {a}({b}):\n    pass\n")
    return "".join(out)


def tiny_config(**changes) -> LanguageModelConfig:
    train = TrainConfig(epochs=2, batch_size=8, lr=1e-2, schedule="cosine", warmup_steps=5,
                        patience=None, shuffle=False, progress=False)
    options = dict(embedding_dim=16, hidden_size=32, num_layers=2, bptt=25, val_fraction=0.1,
                   test_fraction=0.1, train=train)
    return LanguageModelConfig(**{**options, **changes})


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "a.py").write_text(code_text(500, seed=1), encoding="utf-8")
    (folder / "b.py").write_text(code_text(300, seed=2), encoding="utf-8")
    (folder / "notes.md").write_text("not code\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def trained(corpus_dir, tmp_path_factory):
    """A tiny character model trained once on the two .py files, and its run directory."""
    root = tmp_path_factory.mktemp("lm")
    model = LanguageModel(tiny_config(pattern="*.py"))
    report = model.fit(corpus_dir, run_dir=root / "run", cache_dir=root / "cache")
    return model, report, root / "run", root / "cache"


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- token streams


def test_split_by_position_at_line_breaks(tmp_path):
    text = "".join(f"line {i:04d}\n" for i in range(1000))
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    corpus = Corpus.scan(tmp_path, val_fraction=0.1, test_fraction=0.2)
    parts = {}
    for part, piece in corpus.chunks():
        parts[part] = parts.get(part, "") + piece
    assert parts["train"] + parts["val"] + parts["test"] == text  # in order, nothing shuffled
    assert parts["train"].endswith("\n") and parts["val"].endswith("\n")
    assert len(parts["train"]) == pytest.approx(0.7 * len(text), abs=11)
    assert len(parts["test"]) == pytest.approx(0.2 * len(text), abs=11)
    stream = cached_stream(corpus, build_tokenizer("char", [text]), tmp_path / "cache")
    assert {p: stream.characters[p] for p in parts} == {p: len(t) for p, t in parts.items()}
    assert stream.parts["train"][1] == stream.parts["val"][0]


def test_stream_is_written_once_and_reused(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("hello world\n" * 50, encoding="utf-8")
    tokenizer = build_tokenizer("char", ["hello world\n"])
    first = cached_stream(Corpus.scan(path), tokenizer, tmp_path / "cache")
    written = os.stat(first.directory / "tokens.bin").st_mtime_ns
    second = cached_stream(Corpus.scan(path), tokenizer, tmp_path / "cache")
    assert (first.reused, second.reused) == (False, True)
    assert second.directory == first.directory
    assert os.stat(second.directory / "tokens.bin").st_mtime_ns == written
    assert isinstance(second.tokens, np.memmap)
    np.testing.assert_array_equal(second.tokens, tokenizer.encode("hello world\n" * 50))
    path.write_text("hello world\n" * 60, encoding="utf-8")  # a changed corpus: a new stream
    third = cached_stream(Corpus.scan(path), tokenizer, tmp_path / "cache")
    assert not third.reused and third.directory != first.directory


def test_folders_are_read_recursively_with_a_pattern(corpus_dir):
    assert [p.name for p in corpus_files(corpus_dir, "*.py")] == ["a.py", "b.py"]
    assert len(corpus_files([corpus_dir])) == 3


def test_contiguous_batches_continue_each_stream():
    tokens = np.arange(101)
    data = ContiguousBatches(tokens, batch_size=4, bptt=10)  # streams of 25 tokens
    assert (data.length, data.bptt, len(data)) == (25, 10, 8)
    for index in range(len(data)):
        window, stream = divmod(index, 4)
        inputs, targets = data[index]
        start = stream * 25 + window * 10
        assert inputs.tolist() == list(range(start, start + 10))
        assert targets.tolist() == list(range(start + 1, start + 11))
    windows = list(evaluation_windows(tokens, 4, 10))  # covers the streams whole
    assert [w[0].shape[1] for w in windows] == [10, 10, 5]
    assert sorted(torch.cat([t for _, t in windows], 1).flatten().tolist()) == list(range(1, 101))


def test_truncated_bptt_carries_the_state_detached():
    config = tiny_config(num_layers=1)
    torch.manual_seed(0)
    net = LanguageModelNet(20, config)
    tokens = np.random.default_rng(0).integers(2, 20, size=201)
    data = ContiguousBatches(tokens, batch_size=4, bptt=10)
    loss = StreamLoss(activation_regularisation=1.0)
    batch = [torch.stack(x) for x in zip(*[data[i] for i in range(4)])]  # (B, T) each
    loss(net, batch).backward()
    h, c = loss.states[True][0]
    assert h.shape == (1, 4, 32) and h.grad_fn is None and c.grad_fn is None
    loss.on_epoch_start(2)
    assert loss.states[True] is None
    # in evaluation, windows with the carried state give the loss of each stream read whole
    net.eval()
    loss.on_eval_start()
    with torch.no_grad():
        per_window = [float(loss(net, [torch.stack(x) for x in zip(*[data[4 * t + j]
                                                                      for j in range(4)])]))
                      for t in range(len(data) // 4)]
        streams = torch.as_tensor(tokens[:201 - 1]).view(4, 50)  # (B, L)
        targets = torch.as_tensor(tokens[1:]).view(4, 50)
        whole = torch.nn.functional.cross_entropy(net(streams).logits.flatten(0, 1),
                                                  targets.flatten())
    assert np.mean(per_window) == pytest.approx(float(whole), rel=1e-5)


# --------------------------------------------------------------------------- the model


def test_tied_weights_projection_and_regularisers_in_training_only():
    net = LanguageModelNet(30, tiny_config(embedding_dim=16, hidden_size=32))
    assert net.decoder.weight is net.embedding.weight
    assert isinstance(net.projection, torch.nn.Linear)  # 32 -> 16 before the tied output
    projected = LanguageModelNet(30, tiny_config(embedding_dim=16, hidden_size=32, proj_size=16))
    assert isinstance(projected.projection, torch.nn.Identity)
    untied = LanguageModelNet(30, tiny_config(tie_weights=False))
    assert untied.decoder.weight is not untied.embedding.weight
    tokens = torch.randint(0, 30, (2, 12))
    net.eval()
    torch.testing.assert_close(net(tokens).logits, net(tokens).logits)
    net.train()
    assert not torch.allclose(net(tokens).logits, net(tokens).logits)  # dropouts, weight drop


def test_training_beats_the_unigram_entropy(trained, corpus_dir):
    model, report, _, _ = trained
    train_text = "".join(Corpus.scan(corpus_dir, "*.py", 0.1, 0.1).part_texts("train"))
    counts = np.array(list(Counter(train_text).values()), dtype=float)
    p = counts / counts.sum()
    unigram_nats = float(-(p * np.log(p)).sum())
    assert report.validation.model["nats_per_token"] < 0.8 * unigram_nats
    assert report.test.model["nats_per_token"] < 0.8 * unigram_nats
    # the baseline beside it is that unigram model (add-one smoothed)
    assert report.test["unigram"]["nats_per_token"] == pytest.approx(unigram_nats, rel=0.1)
    assert report.tokens_per_second > 0 and report.result.steps > 0


def test_evaluation_numbers(trained):
    model, report, run_dir, cache = trained
    test = CrossEntropy(**report.test.details["model"])
    assert test.perplexity == pytest.approx(math.exp(test.nats / test.predicted))
    assert test.tokens == test.characters  # a character model
    assert test.bits_per_character == pytest.approx(test.nats / test.predicted / math.log(2))
    # word or BPE tokens: bits per character of the text itself
    words = CrossEntropy("text", tokens=250, characters=1000, predicted=249, nats=498.0)
    assert words.bits_per_character == pytest.approx(2.0 * 250 / 1000 / math.log(2))
    again = LanguageModel.load(run_dir).evaluate(cache_dir=cache)
    assert again.details["model"]["nats"] == pytest.approx(test.nats, rel=1e-5)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["rows"]["model"]["perplexity"] == pytest.approx(test.perplexity)


def test_sampling_filters():
    logits = torch.tensor([1.0, 3.0, 2.0, 0.5])
    greedy = next_token_probabilities(logits, top_k=1)
    assert greedy.tolist() == [0.0, 1.0, 0.0, 0.0]
    two = next_token_probabilities(logits, top_k=2)
    assert (two > 0).tolist() == [False, True, True, False]
    assert float(two.sum()) == pytest.approx(1.0)
    torch.testing.assert_close(next_token_probabilities(logits), torch.softmax(logits, 0))
    assert next_token_probabilities(logits, top_p=0.01).tolist() == [0.0, 1.0, 0.0, 0.0]
    nucleus = next_token_probabilities(logits, top_p=0.8)  # 0.61 + 0.22 reaches 0.8
    assert (nucleus > 0).tolist() == [False, True, True, False]
    cold = next_token_probabilities(logits, temperature=0.1)
    hot = next_token_probabilities(logits, temperature=10.0)
    assert cold.max() > 0.99 and hot.max() < 0.35


def test_generation_is_reproducible_and_greedy_with_top_k_1(trained):
    model = trained[0]
    first = model.generate("def ", max_tokens=40, seed=3)
    assert model.generate("def ", max_tokens=40, seed=3) == first
    assert len(first) == 40  # a character model: one character per token
    greedy = model.generate("def ", max_tokens=30, top_k=1, seed=1)
    assert model.generate("def ", max_tokens=30, top_k=1, seed=2) == greedy
    net, tokenizer = model.net, model.tokenizer
    ids = tokenizer.encode("def ")
    with torch.no_grad():
        for _ in range(30):
            logits = net(torch.tensor([ids])).logits[0, -1]
            logits[0] = float("-inf")
            ids.append(int(logits.argmax()))
    assert tokenizer.decode(ids)[4:] == greedy


def test_stop_string_and_streaming(trained):
    model = trained[0]
    free = model.generate("if ", max_tokens=80, seed=0, temperature=0.5)
    stop = free[10:12]
    cut = free[:free.index(stop)]
    pieces = list(model.stream("if ", max_tokens=80, seed=0, temperature=0.5, stop=stop))
    assert "".join(pieces) == cut
    assert all(stop not in piece for piece in pieces)
    received = []
    assert model.generate("if ", 80, 0.5, seed=0, stop=stop, on_text=received.append) == cut
    assert received == pieces


def test_save_load_round_trip(trained, tmp_path):
    model, _, run_dir, _ = trained
    loaded = LanguageModel.load(run_dir)
    tokens = torch.tensor([model.tokenizer.encode("def alpha(beta):")])
    model.net.eval()
    loaded.net.eval()
    torch.testing.assert_close(loaded.net(tokens).logits, model.net(tokens).logits)
    assert loaded.generate("x", max_tokens=20, seed=4) == model.generate("x", 20, seed=4)


def test_pretrained_encoder_structure(trained):
    model, _, run_dir, _ = trained
    encoder = pretrained_encoder(run_dir)
    assert encoder.tokenizer.to_json() == model.tokenizer.to_json()
    assert isinstance(encoder.embedding, torch.nn.Embedding)
    assert encoder.embedding.weight.shape == (model.tokenizer.vocab_size, 16)
    lstm = encoder.lstm
    assert isinstance(lstm, LSTM) and lstm.batch_first and not lstm.bidirectional
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers) == (16, 32, 2)
    assert encoder.config == {"vocab_size": model.tokenizer.vocab_size, "embedding_dim": 16,
                              "hidden_size": 32, "num_layers": 2, "proj_size": 0,
                              "tokenizer": "char"}
    # the stacked LSTM computes what the language model's layers compute
    tokens = torch.tensor([model.tokenizer.encode("def alpha(beta):\n")])
    model.net.eval()
    lstm.eval()
    with torch.no_grad():
        expected = model.net(tokens).hidden
        output, _ = lstm(encoder.embedding(tokens))
    torch.testing.assert_close(output, expected)


def test_classifier_starts_from_the_language_model(trained, tmp_path):
    classify = pytest.importorskip("lstmkit.tasks.classify")
    _, _, run_dir, _ = trained
    generator = np.random.default_rng(0)
    texts = [code_text(1, seed=int(s)).strip() for s in generator.integers(0, 10**6, 40)]
    rows = [{"text": t, "label": "call" if "call" in t else "other"} for t in texts]
    (tmp_path / "train.csv").write_text(
        "text,label\n" + "".join(f'"{r["text"].replace(chr(34), chr(34) * 2)}",{r["label"]}\n'
                                 for r in rows), encoding="utf-8")
    train = TrainConfig(epochs=2, batch_size=8, progress=False, patience=None)
    config = classify.ClassifierConfig(from_lm=str(run_dir), bidirectional=False, train=train)
    classifier = classify.Classifier(config)
    classifier.fit(tmp_path / "train.csv")
    assert classifier.tokenizer.to_json() == pretrained_encoder(run_dir).tokenizer.to_json()
    assert classifier.net.encoder.num_layers == 2


# --------------------------------------------------------------------------- inspection


def test_text_features_and_found_units():
    text = 'x = f("a # b", [1])  # c\n    y\n'
    features = text_features(text)
    assert features["inside quotes"][text.index('"a')] == 1
    assert features["inside quotes"][text.index("# b")] == 1
    assert features["inside a comment"][text.index("# b")] == 0
    assert features["inside a comment"][text.index("# c")] == 1
    assert features["bracket depth"][text.index("[1") + 1] == 2
    assert features["position in line"][text.index("y")] == 4
    assert features["line indentation"][text.index("y")] == 4
    activations = np.random.default_rng(0).normal(size=(len(text), 6)) * 0.1
    activations[:, 3] = features["inside quotes"] * 1.6 - 0.8  # a planted quote unit
    views = find_interesting_units(list(text), activations)
    assert views[0].unit == 3 and "inside quotes" in views[0].label


def test_inspect_writes_png_and_html(trained, tmp_path, capsys):
    _, _, run_dir, cache = trained
    code, out, err = run_cli(["lm", "inspect", "--run-dir", run_dir, "--output-dir",
                              tmp_path / "look",
                              "--characters", "300", "--cache-dir", cache], capsys)
    assert code == 0, err
    html = (tmp_path / "look" / "cell_activations.html").read_text()
    assert "<span style=\"background:" in html and "r = " in html
    assert (tmp_path / "look" / "cell_activations.png").read_bytes()[:4] == b"\x89PNG"
    code, _, err = run_cli(["lm", "inspect", "--run-dir", run_dir, "--output-dir",
                            tmp_path / "units",
                            "--text", "def f(x):\n", "--units", "0,5"], capsys)
    assert code == 0, err
    assert "unit 5" in (tmp_path / "units" / "cell_activations.html").read_text()


# --------------------------------------------------------------------------- the CLI


def test_cli_train_evaluate_generate(tmp_path, capsys):
    (tmp_path / "c.txt").write_text(code_text(200), encoding="utf-8")
    small = ["--embedding-dim", "8", "--hidden-size", "16", "--num-layers", "1", "--batch-size",
             "4", "--bptt", "20", "--steps", "5", "--quiet", "--cache-dir", tmp_path / "cache"]
    code, out, err = run_cli(["lm", "train", "--data", tmp_path / "c.txt", "--run-dir",
                              tmp_path / "run",
                              *small], capsys)
    assert code == 0, err
    assert "bits_per_character" in out and "unigram" in out
    code, out, _ = run_cli(["lm", "evaluate", "--run-dir", tmp_path / "run", "--cache-dir",
                            tmp_path / "cache"], capsys)
    assert code == 0 and out.startswith("test: ") and "perplexity" in out
    code, out, _ = run_cli(["lm", "generate", "--run-dir", tmp_path / "run", "--prompt", "def",
                            "--max-tokens", "15", "--seed", "2"], capsys)
    assert code == 0 and out.startswith("def") and len(out) == len("def") + 15 + 1


def write_bytes(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case, message", [
    ("empty", "the corpus is empty"),
    ("no files", "the corpus is empty: no files"),
    ("not utf8", "byte 0xff at byte offset 6"),
    ("too small", "smaller than one batch"),
])
def test_bad_corpus_is_a_clear_error_and_keeps_the_old_run(case, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")  # an earlier run, to be left alone
    text = {"empty": b"", "no files": None, "not utf8": b"hello\n\xff\n",
            "too small": b"tiny text\n"}[case]
    folder = tmp_path / "texts"
    folder.mkdir()
    if text is not None:
        write_bytes(folder / "t.txt", text)
    code, out, err = run_cli(["lm", "train", "--data", folder, "--run-dir", run_dir, "--overwrite",
                              "--cache-dir", tmp_path / "cache", "--quiet"], capsys)
    assert code == 2
    assert message in err and "Traceback" not in err
    if case == "not utf8":
        assert "t.txt" in err
    assert [p.name for p in run_dir.iterdir()] == ["config.json"]
    assert (run_dir / "config.json").read_text() == "{}"


def test_bad_generation_options_and_unknown_prompt(trained, capsys):
    run_dir = trained[2]
    for option, value in [("--temperature", "0"), ("--temperature", "-1"), ("--top-k", "0"),
                          ("--top-p", "1.5")]:
        code, out, err = run_cli(["lm", "generate", "--run-dir", run_dir, option, value], capsys)
        assert code == 2 and option.strip("-").replace("-", "_") in err and out == ""
    code, out, err = run_cli(["lm", "generate", "--run-dir", run_dir, "--prompt", "def €",
                              "--max-tokens",
                              "5", "--seed", "0"], capsys)
    assert code == 0
    assert "warning" in err and "'€'" in err and "<unk>" in err
    assert out.startswith("def €")


def test_model_directory_of_another_task(tmp_path, capsys):
    with open_run(tmp_path / "clf", "classify") as run:
        write_config(run.work, "classify", {})
    for command in (["evaluate"], ["generate"], ["inspect", "--output-dir", tmp_path / "o"]):
        code, _, err = run_cli(["lm", command[0], "--run-dir", tmp_path / "clf", *command[1:]],
                               capsys)
        assert code == 2 and "'classify' run directory" in err
    assert not (tmp_path / "o").exists()


def test_config_checks():
    with pytest.raises(LstmkitError, match="shuffle"):
        LanguageModelConfig(train=TrainConfig(shuffle=True))
    with pytest.raises(LstmkitError, match="--weight-drop"):
        LanguageModelConfig(weight_drop=1.0)
    with pytest.raises(LstmkitError, match="tokenizer"):
        LanguageModelConfig(tokenizer="sentencepiece")


def test_word_model_reports_bits_per_character_of_the_text(tmp_path):
    (tmp_path / "c.txt").write_text(code_text(400), encoding="utf-8")
    model = LanguageModel(tiny_config(tokenizer="word", num_layers=1, bptt=10,
                                      train=TrainConfig(max_steps=3, batch_size=4,
                                                        shuffle=False, progress=False)))
    report = model.fit(tmp_path / "c.txt", cache_dir=tmp_path / "cache")
    test = CrossEntropy(**report.test.details["model"])
    assert test.tokens < test.characters
    assert test.bits_per_character == pytest.approx(
        test.nats / test.predicted * test.tokens / test.characters / math.log(2))
    stream = TokenStream.open(next((tmp_path / "cache" / "token_streams").iterdir()))
    assert stream.characters["test"] == test.characters
