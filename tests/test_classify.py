"""Sequence classification: API and CLI on tiny synthetic data, masking, attention, bad input."""

import json
import random
import sys
import time
import types

import numpy as np
import pandas as pd
import pytest
import torch

from lstmkit.cli import main
from lstmkit.data.labelled_tables import load_sequences
from lstmkit.data.tokenizers import build_tokenizer
from lstmkit.errors import LstmkitError
from lstmkit.nn import LSTM
from lstmkit.tasks.classify import Classifier, ClassifierConfig
from lstmkit.tasks.classify.network import POOLINGS, SequenceClassifierNet
from lstmkit.tasks.classify.transfer import GradualUnfreezing, discriminative_groups, layer_groups
from lstmkit.train import TrainConfig

WORDS = "the a cat dog sat ran on under mat big small red blue house tree".split()
TINY_MODEL = ["--embedding-dim", "12", "--hidden-size", "12", "--batch-size", "32",
              "--lr", "0.02", "--quiet"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # tiny models on a shared machine run fastest on one thread
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def keyword_texts(count: int, seed: int) -> pd.DataFrame:
    """Label "pos" exactly when the text contains the word "great"."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 9))]
        positive = rng.random() < 0.5
        if positive:
            words.insert(rng.randrange(len(words) + 1), "great")
        rows.append({"review": " ".join(words), "sentiment": "pos" if positive else "neg"})
    return pd.DataFrame(rows)


def signed_sequences(count: int, seed: int) -> pd.DataFrame:
    """Long layout, lengths 3..12; label = the sign of the sequence's mean."""
    rng = np.random.default_rng(seed)
    rows = []
    for sequence in range(count):
        sign = rng.choice([-1.0, 1.0])
        values = sign * 0.8 + rng.normal(0, 0.5, size=rng.integers(3, 13))
        label = "up" if values.mean() > 0 else "down"
        rows += [{"id": f"s{sequence}", "t": t, "x": v, "label": label}
                 for t, v in enumerate(values)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed)  # steps out of order


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    keyword_texts(200, seed=0).to_csv(folder / "train.csv", index=False)
    keyword_texts(60, seed=1).to_csv(folder / "test.csv", index=False)
    code = main(["classify", "train", "--data", str(folder / "train.csv"), "--run-dir",
                 str(folder / "run"), "--text-column", "review", "--label-column",
                 "sentiment", "--epochs", "8", *TINY_MODEL])
    assert code == 0
    return folder


# --------------------------------------------------------------------------- text, CLI


def test_train_writes_a_run_that_learned_the_keyword(text_run):
    run = text_run / "run"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "metrics.json",
                 "confusion_matrix.png", "baseline.json", "log.csv"):
        assert (run / name).is_file(), name
    validation = json.loads((run / "metrics.json").read_text())
    assert validation["rows"]["model"]["accuracy"] >= 0.9
    assert validation["labels"]["baseline"] == "tfidf_logreg"


def test_predict_texts_and_file(text_run, capsys):
    code, out, _ = run_cli(["classify", "predict", "--run-dir", text_run / "run", "--text",
                            "the cat is great", "--text", "the dog sat"], capsys)
    assert code == 0
    frame = pd.read_csv(__import__("io").StringIO(out))
    assert list(frame["predicted"]) == ["pos", "neg"]
    assert np.allclose(frame[["p(neg)", "p(pos)"]].sum(axis=1), 1.0)
    output = text_run / "predictions.csv"
    code, _, _ = run_cli(["classify", "predict", "--run-dir", text_run / "run", "--data",
                          text_run / "test.csv",
                          "--output", output], capsys)
    assert code == 0
    predictions = pd.read_csv(output)
    assert len(predictions) == 60 and "true_label" in predictions
    assert (predictions["predicted"] == predictions["true_label"]).mean() >= 0.9


def test_evaluate_beside_baseline_and_inspect(text_run, capsys):
    out_dir = text_run / "evaluation"
    code, out, _ = run_cli(["classify", "evaluate", "--run-dir", text_run / "run", "--data",
                            text_run / "test.csv",
                            "--output-dir", out_dir], capsys)
    assert code == 0 and "tfidf_logreg" in out and "lstmkit" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["rows"]["model"]["accuracy"] >= 0.9 and metrics["details"]["examples"] == 60
    assert set(metrics["details"]["per_class"]["model"]) == {"neg", "pos"}
    assert (out_dir / "confusion_matrix.png").stat().st_size > 0
    look = text_run / "look"
    code, out, _ = run_cli(["classify", "inspect", "--run-dir", text_run / "run", "--text",
                            "a big great tree", "--output-dir", look, "--units", "0,3"],
                           capsys)
    assert code == 0 and "'pos'" in out
    page = (look / "inspection.html").read_text()
    assert "great" in page and "unit 3" in page
    assert (look / "attention.png").is_file() and (look / "cells.png").is_file()


def test_api_explain_attention_is_on_the_keyword(text_run):
    classifier = Classifier.load(text_run / "run")
    explanation = classifier.explain("the red great house")
    assert explanation.tokens == ["the", "red", "great", "house"]
    assert explanation.attention.sum() == pytest.approx(1.0, abs=1e-5)
    assert explanation.attention.argmax() == 2
    assert explanation.cells.shape == (4, 8)


# --------------------------------------------------------------------------- numbers, API


def test_numeric_sequences_long_layout(tmp_path, capsys):
    signed_sequences(200, seed=0).to_csv(tmp_path / "train.csv", index=False)
    signed_sequences(60, seed=1).to_csv(tmp_path / "test.csv", index=False)
    config = ClassifierConfig(data="numbers", value_columns=["x"], id_column="id",
                              step_column="t", hidden_size=12, pooling="mean",
                              train=TrainConfig(epochs=10, batch_size=32, lr=0.02,
                                                progress=False))
    classifier = Classifier(config)
    report = classifier.fit(tmp_path / "train.csv", run_dir=tmp_path / "run")
    assert report.sequences_per_second > 0
    loaded = Classifier.load(tmp_path / "run")
    evaluation = loaded.evaluate(tmp_path / "test.csv")
    assert evaluation.model["accuracy"] >= 0.85
    assert evaluation.labels["baseline"] == "1nn_euclidean"
    assert np.allclose(loaded.predict_proba(tmp_path / "test.csv"),
                       classifier.predict_proba(tmp_path / "test.csv"))
    predictions = loaded.predict(tmp_path / "test.csv")
    assert predictions["id"].str.startswith("s").all() and len(predictions) == 60
    code, _, err = run_cli(["classify", "predict", "--run-dir", tmp_path / "run", "--text",
                            "1 2"], capsys)
    assert code == 2 and "numeric sequences, not texts" in err


def test_lstm_variants_and_frames_survive_save_and_load(tmp_path, capsys):
    signed_sequences(24, seed=6).to_csv(tmp_path / "train.csv", index=False)
    code, _, err = run_cli(["classify", "train", "--data", tmp_path / "train.csv", "--run-dir",
                            tmp_path / "run", "--kind", "numbers", "--value-columns", "x",
                            "--id-column", "id", "--step-column", "t", "--frame-length", "3",
                            "--hidden-size", "6", "--num-layers", "2", "--peephole",
                            "--layer-norm", "--zoneout", "0.1", "0.05", "--recurrent-dropout",
                            "0.1", "--weight-drop", "0.1", "--proj-size", "4", "--pooling",
                            "last", "--epochs", "1", "--quiet"], capsys)
    assert code == 0, err
    classifier = Classifier.load(tmp_path / "run")
    encoder = classifier.net.encoder
    assert encoder.peephole and encoder.layer_norm and encoder.zoneout == (0.1, 0.05)
    assert encoder.proj_size == 4 and encoder.input_size == 3  # 3 steps of 1 value per input
    explanation = classifier.explain(np.arange(7.0))
    assert explanation.tokens == ["0", "3", "6"] and explanation.attention is None


def test_one_row_per_sequence_matches_long_layout(tmp_path):
    long = signed_sequences(5, seed=3)
    expected = load_sequences(long, ["x"], "label", id_column="id", step_column="t")
    rows = [{"series": s[:, 0].tolist(), "label": lab}
            for s, lab in zip(expected.sequences, expected.labels)]
    (tmp_path / "seq.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    pd.DataFrame({"series": [" ".join(map(str, r["series"])) for r in rows],
                  "label": expected.labels}).to_csv(tmp_path / "seq.csv", index=False)
    for name in ("seq.jsonl", "seq.csv"):
        found = load_sequences(tmp_path / name, ["series"], "label")
        assert found.labels == expected.labels
        for a, b in zip(found.sequences, expected.sequences):
            np.testing.assert_allclose(a, b, rtol=1e-6)


# --------------------------------------------------------------------------- the network


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_more_padding_changes_nothing(pooling, bidirectional):
    torch.manual_seed(0)
    net = SequenceClassifierNet(3, {"hidden_size": 8, "bidirectional": bidirectional},
                                pooling=pooling, vocab_size=20, embedding_dim=6).eval()
    tokens = torch.randint(1, 20, (2, 7))
    lengths = torch.tensor([7, 4])
    padded = torch.cat([tokens, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    padded[1, 4:] = 0
    with torch.no_grad():
        alone = net(tokens[1:, :4], torch.tensor([4]))
        together = net(tokens, lengths)
        more = net(padded, lengths)
    torch.testing.assert_close(together[1:], alone, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(more, together, rtol=1e-5, atol=1e-6)


def test_attention_sums_to_one_on_real_steps_and_zero_on_padding():
    torch.manual_seed(0)
    net = SequenceClassifierNet(2, {"hidden_size": 8}, pooling="attention",
                                input_size=3).eval()
    lengths = torch.tensor([6, 2, 4])
    with torch.no_grad():
        weights = net.encode(torch.randn(3, 6, 3), lengths).attention  # (B, T)
    mask = torch.arange(6) < lengths[:, None]
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))
    assert torch.all(weights[~mask] == 0)
    assert torch.all(weights[mask] > 0)


def test_class_weights_follow_inverse_frequency():
    classifier = Classifier(ClassifierConfig(class_weights=True))
    classifier.classes = ["a", "b"]
    weights = classifier._class_weights(np.array([0, 0, 0, 1]))
    torch.testing.assert_close(weights, torch.tensor([4 / 6, 2.0]))


# --------------------------------------------------------------------------- from a language model


class FakePretrainedEncoder:
    """What tasks.language_model.pretrained_encoder returns, built here."""

    def __init__(self, texts):
        torch.manual_seed(1)
        self.tokenizer = build_tokenizer("char", texts, specials=["<eos>"])
        self.embedding = torch.nn.Embedding(self.tokenizer.vocab_size, 10)
        self.lstm = LSTM(10, 14, num_layers=2, batch_first=True)
        self.config = {"embedding_dim": 10, "hidden_size": 14, "num_layers": 2}


@pytest.fixture
def fake_language_model(monkeypatch):
    texts = keyword_texts(50, seed=5)["review"].tolist()
    encoder = FakePretrainedEncoder(texts)
    module = types.ModuleType("lstmkit.tasks.language_model")
    module.pretrained_encoder = lambda run_dir: encoder
    monkeypatch.setitem(sys.modules, "lstmkit.tasks.language_model", module)
    return encoder


def test_from_lm_copies_weights_and_freezes_all_but_the_head_first(
        tmp_path, fake_language_model, capsys):
    keyword_texts(80, seed=2).to_csv(tmp_path / "train.csv", index=False)
    code, _, err = run_cli(["classify", "train", "--data", tmp_path / "train.csv", "--run-dir",
                            tmp_path / "run", "--text-column", "review", "--label-column",
                            "sentiment", "--from-lm", tmp_path / "lm", "--epochs", "1",
                            "--quiet", "--no-bidirectional"], capsys)
    assert code == 0, err
    classifier = Classifier.load(tmp_path / "run")
    assert classifier.tokenizer.to_json() == fake_language_model.tokenizer.to_json()
    # epoch 1 of gradual unfreezing trains the head only
    for key, value in fake_language_model.lstm.state_dict().items():
        torch.testing.assert_close(classifier.net.encoder.state_dict()[key], value)
    torch.testing.assert_close(classifier.net.embedding.weight,
                               fake_language_model.embedding.weight)
    assert classifier.predict(["a great cat"])["predicted"].iloc[0] in ("pos", "neg")


def test_discriminative_rates_and_unfreezing_order():
    net = SequenceClassifierNet(2, {"hidden_size": 6, "num_layers": 2}, vocab_size=9,
                                embedding_dim=4)
    groups = layer_groups(net)  # head+attention, layer 1, layer 0, embedding
    assert len(groups) == 4
    assert groups[1] == [p for n, p in net.encoder.named_parameters() if n.endswith("_l1")]
    assert groups[3] == [net.embedding.weight]
    rates = [g["lr"] for g in discriminative_groups(groups, 1.0, 2.6)]
    assert rates == pytest.approx([1.0, 1 / 2.6, 1 / 2.6 ** 2, 1 / 2.6 ** 3])
    unfreezing = GradualUnfreezing(groups)
    for epoch, trainable in [(1, 1), (2, 2), (3, 3), (4, 4), (9, 4)]:
        unfreezing.on_epoch_start(epoch, net, None)
        assert [all(p.requires_grad for p in g) for g in groups] == (
            [True] * trainable + [False] * (4 - trainable))


# --------------------------------------------------------------------------- bad input


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


BAD_TRAINING_FILES = {
    "missing column": ("text,label\nhello,a\nbye,b\n", ["--text-column", "review"],
                       "no column 'review'; its columns are 'text', 'label'"),
    "single class": ("text,label\nhello,a\nbye,a\nhi,a\n", [], "single class"),
    "empty text": ("text,label\nhello,a\n   ,b\nhi,a\n", [], "row 2: the text"),
    "zero-length sequence": ('{"v": [1, 2], "label": "a"}\n{"v": [], "label": "b"}\n',
                             ["--kind", "numbers", "--value-columns", "v"],
                             "row 2: the sequence in column 'v' has length zero"),
    "mixed value types": ("id,v,label\n1,0.5,a\n1,x7,a\n2,1.5,b\n",
                          ["--kind", "numbers", "--value-columns", "v", "--id-column", "id"],
                          "row 2: column 'v' mixes value types: 'x7'"),
    "mixed types in a list": ('{"v": [1, "a"], "label": "a"}\n{"v": [2], "label": "b"}\n',
                              ["--kind", "numbers", "--value-columns", "v"],
                              "mixes value types"),
}


@pytest.mark.parametrize("case", sorted(BAD_TRAINING_FILES))
def test_bad_training_data_is_a_clear_error(case, tmp_path, capsys):
    content, options, message = BAD_TRAINING_FILES[case]
    suffix = ".jsonl" if content.startswith("{") else ".csv"
    data = write(tmp_path / f"data{suffix}", content)
    code, _, err = run_cli(["classify", "train", "--data", data, "--run-dir", tmp_path / "run",
                            *options, "--quiet"], capsys)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_non_utf8_names_the_byte(tmp_path, capsys):
    (tmp_path / "data.csv").write_bytes(b"text,label\nhello,a\ncaf\xe9,b\n")
    code, _, err = run_cli(["classify", "train", "--data", tmp_path / "data.csv", "--run-dir",
                            tmp_path / "run"], capsys)
    assert code == 2
    assert "not UTF-8" in err and "byte offset 22 (line 3" in err


def test_existing_run_dir_and_bad_model_dirs_are_left_alone(text_run, tmp_path, capsys):
    run = text_run / "run"
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    code, _, err = run_cli(["classify", "train", "--data", text_run / "train.csv", "--run-dir", run,
                            "--text-column", "review", "--label-column", "sentiment"],
                           capsys)
    assert code == 2 and "--overwrite" in err
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before
    other = tmp_path / "forecast_run"
    other.mkdir()
    write(other / "config.json", json.dumps({"lstmkit_version": "0.1.0", "format_version": 1,
                                             "task": "forecast"}))
    write(other / "model.safetensors", "")
    code, _, err = run_cli(["classify", "predict", "--run-dir", other, "--text", "hi"], capsys)
    assert code == 2 and "has not finished" in err


def test_unseen_labels_in_evaluate_and_predict(text_run, tmp_path, capsys):
    data = write(tmp_path / "new.csv", "review,sentiment\nthe cat,pos\nthe dog,meh\n")
    for command in (["evaluate", "--run-dir", text_run / "run", "--data", data],
                    ["predict", "--run-dir", text_run / "run", "--data", data]):
        code, _, err = run_cli(["classify", *command], capsys)
        assert code == 2
        assert "labels never seen in training: 'meh'" in err and "Traceback" not in err
    code, _, err = run_cli(["classify", "predict", "--run-dir", text_run / "run", "--text",
                            "  "], capsys)
    assert code == 2 and "text 1 is empty" in err
    existing = write(tmp_path / "out.csv", "keep me")
    code, _, err = run_cli(["classify", "predict", "--run-dir", text_run / "run", "--text", "great",
                            "--output", existing], capsys)
    assert code == 2 and existing.read_text() == "keep me"


@pytest.mark.parametrize("val_fraction, patience, warned", [
    (0.1, 5, True),      # 8 validation texts decide when to stop: said
    (0.1, None, False),  # no early stopping: the validation split decides nothing
    (0.5, 5, False),     # 40 validation texts
])
def test_a_small_validation_split_is_warned_about(caplog, val_fraction, patience, warned):
    rng = random.Random(0)
    texts = [" ".join(rng.choice("a b c d".split()) for _ in range(3)) for _ in range(80)]
    labels = ["first a" if t.startswith("a") else "other" for t in texts]
    config = ClassifierConfig(embedding_dim=4, hidden_size=4, val_fraction=val_fraction,
                              train=TrainConfig(epochs=1, batch_size=16, patience=patience,
                                                progress=False))
    with caplog.at_level("WARNING", logger="lstmkit.classify"):
        Classifier(config).fit(pd.DataFrame({"text": texts, "label": labels}))
    said = [r for r in caplog.records if "validation split has only" in r.getMessage()]
    assert bool(said) == warned


# --------------------------------------------------------------------------- small data


def three_shapes(count: int, seed: int, length: int = 40) -> pd.DataFrame:
    """One row per series, classes in turn: a noisy sine, square or sawtooth wave of
    random phase (a stand-in for a small UCR set)."""
    rng = np.random.default_rng(seed)
    steps = np.linspace(0, 1, length)
    rows = []
    for k in range(count):
        cycles = 3 * steps + rng.uniform(0, 1)
        wave = [np.sin(2 * np.pi * cycles), np.sign(np.sin(2 * np.pi * cycles)),
                2 * (cycles % 1) - 1][k % 3]
        values = wave + rng.normal(0, 0.3, length)
        rows.append({"series": " ".join(f"{v:.3f}" for v in values), "label": "abc"[k % 3]})
    return pd.DataFrame(rows)


def test_stratified_split_keeps_every_class_in_a_small_validation_split():
    from lstmkit.tasks.classify.data import stratified_split

    targets = np.repeat([0, 1, 2], 12)  # 36 series, 3 classes: 0.1 of 12 rounds to 1
    train, val = stratified_split(targets, 0.1, seed=0)
    assert np.bincount(targets[val]).tolist() == [2, 2, 2]
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(36))
    larger = np.repeat([0, 1], [200, 40])  # the fraction rules once it gives more
    _, val = stratified_split(larger, 0.1, seed=0)
    assert np.bincount(larger[val]).tolist() == [20, 4]
    tiny = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2])  # a class keeps two thirds of itself
    _, val = stratified_split(tiny, 0.1, seed=0)
    assert np.bincount(tiny[val], minlength=3).tolist() == [0, 1, 2]
    assert len(stratified_split(targets, 0.0, seed=0)[1]) == 0  # no validation asked for


def test_small_set_validates_on_every_class_and_beats_the_majority(caplog):
    config = ClassifierConfig(data="numbers", value_columns=["series"],
                              train=TrainConfig(progress=False))  # the defaults otherwise
    classifier = Classifier(config)
    with caplog.at_level("WARNING", logger="lstmkit.classify"):
        report = classifier.fit(three_shapes(36, seed=0))
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "small training data: 30 examples for 3 classes" in messages
    assert "validation split has only 6 examples (a: 2, b: 2, c: 2)" in messages
    assert report.validation.details["examples"] == 6
    floor = config.early_stopping_floor()
    assert floor == 10 and report.train.best_epoch >= floor
    test = classifier.evaluate(three_shapes(90, seed=1))
    assert test.model["accuracy"] >= 0.55  # the majority class scores 1/3


def flipped(data: pd.DataFrame) -> pd.DataFrame:
    return data.assign(label=data["label"].map({"up": "down", "down": "up"}))


@pytest.mark.parametrize("min_epochs, epochs_run, best_epoch", [
    (0, 2, 1),  # the validation loss decides from epoch 1: stopped at once
    (5, 6, 5),  # patience counts only after the floor; the best epoch is not before it
])
def test_early_stopping_waits_for_the_floor(min_epochs, epochs_run, best_epoch):
    # validation labels are the training labels flipped: the more the model learns, the
    # worse its validation loss, so every epoch after the first is a bad one
    train = signed_sequences(40, seed=4)
    config = ClassifierConfig(data="numbers", value_columns=["x"], id_column="id",
                              step_column="t", hidden_size=8, min_epochs=min_epochs,
                              train=TrainConfig(epochs=30, lr=0.02, patience=1,
                                                progress=False))
    report = Classifier(config).fit(train, val_data=flipped(train))
    assert report.train.stop_reason == "early_stopping"
    assert (report.train.epochs_run, report.train.best_epoch) == (epochs_run, best_epoch)


def test_the_early_stopping_floor_scales_with_the_run():
    assert ClassifierConfig(train=TrainConfig(epochs=50)).early_stopping_floor() == 10
    assert ClassifierConfig(train=TrainConfig(epochs=8)).early_stopping_floor() == 2
    assert ClassifierConfig(min_epochs=3).early_stopping_floor() == 3
    with pytest.raises(LstmkitError, match="--min-epochs"):
        ClassifierConfig(min_epochs=-1)


def test_a_budgeted_fit_ends_in_time_with_its_schedule_run_down(tmp_path):
    budget = 4.0
    config = ClassifierConfig(data="numbers", value_columns=["series"], hidden_size=16,
                              train=TrainConfig(epochs=100_000, patience=None,
                                                schedule="cosine", time_budget_s=budget,
                                                progress=False))
    started = time.monotonic()
    report = Classifier(config).fit(three_shapes(36, seed=0), run_dir=tmp_path / "run")
    seconds = time.monotonic() - started
    # the whole fit (reading, baseline, training, evaluation, plots, files): the
    # budget's 10% plus a second for a busy machine
    assert seconds <= 1.1 * budget + 1.0
    assert report.train.stop_reason == "time_budget"
    assert report.train.history[-1]["lr"] < 0.05 * config.train.lr  # decayed by the clock
    assert (tmp_path / "run" / "metrics.json").is_file()
