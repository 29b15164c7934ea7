"""Translation: attention, token batches, beam search, training on a rule-based corpus,
ensembles, the CLI, and bad input."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

SUPPORT = Path(__file__).resolve().parent / "support"
sys.path.insert(0, str(SUPPORT))

from number_words import pairs, write_tsv  # noqa: E402

from lstmkit.cli import main  # noqa: E402
from lstmkit.data.parallel_text import TokenBatches, read_parallel, split_by_source  # noqa: E402
from lstmkit.errors import LstmkitError  # noqa: E402
from lstmkit.nn import Attention  # noqa: E402
from lstmkit.tasks.translate.search import beam_search  # noqa: E402
from lstmkit.tasks.translate.translator import BOS, EOS  # noqa: E402
from lstmkit.translate import TrainConfig, TranslationConfig, Translator  # noqa: E402


def small_config(**options) -> TranslationConfig:
    train = TrainConfig(epochs=options.pop("epochs", 8), batch_size=400, lr=5e-3,
                        warmup_steps=20, patience=None, progress=False)
    return TranslationConfig(**{"tokenizer": "word", "vocab_size": None, "embedding_dim": 32,
                                "hidden_size": 64, "dropout": 0.1, "validation_sentences": 100,
                                "source_language": "en", "target_language": "digits",
                                **options}, train=train)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_tsv(tmp_path_factory.mktemp("numbers") / "numbers.tsv", count=2000)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> tuple[Translator, Path]:
    run = tmp_path_factory.mktemp("runs") / "numbers"
    model = Translator(small_config())
    model.fit(corpus, run)
    return model, run


# --------------------------------------------------------------------------- attention


@pytest.mark.parametrize("score", ["dot", "general", "additive"])
def test_attention_weighs_only_real_positions_and_queries_share_keys(score):
    torch.manual_seed(0)
    attention = Attention(score, 6, 6)
    keys = torch.randn(2, 5, 6)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    queries = torch.randn(2, 3, 6)
    context, weights = attention(queries, keys, mask=mask)
    assert context.shape == (2, 3, 6) and weights.shape == (2, 3, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3))
    assert torch.all(weights[1, :, 3:] == 0)
    # three queries at once read the same as each alone
    for n in range(3):
        alone = attention(queries[:, n:n + 1], keys, mask=mask)
        assert torch.allclose(alone.context[:, 0], context[:, n], atol=1e-6)
    # the context is the weighted sum of the values
    assert torch.allclose(context, torch.bmm(weights, keys), atol=1e-6)


# --------------------------------------------------------------------------- batches


def test_token_batches_cover_every_pair_once_within_the_token_bound():
    rng = np.random.default_rng(0)
    sources = [[1] * int(n) for n in rng.integers(1, 30, 500)]
    targets = [[2] * int(n) for n in rng.integers(1, 30, 500)]
    batches = TokenBatches(sources, targets, batch_tokens=200, bos_id=3, eos_id=4)
    order = rng.permutation(500)
    plan = batches.batch_plan(order)
    assert sorted(np.concatenate(plan).tolist()) == list(range(500))
    for batch in plan:
        assert batches.sizes[batch].max() * len(batch) <= 200
    assert all(np.array_equal(a, b) for a, b in zip(plan, batches.batch_plan(order)))
    collated = batches.collate([batches[i] for i in plan[0]])
    assert collated.target_input[:, 0].eq(3).all()
    lengths = collated.target_lengths
    assert collated.target_output[torch.arange(len(lengths)), lengths - 1].eq(4).all()


def test_split_by_source_keeps_each_source_in_one_part(corpus):
    text = read_parallel(corpus)
    parts = split_by_source(text, 0.1, 0.1)
    seen = [set(part.sources) for part in parts.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert sum(len(p) for p in parts.values()) == len(text)


# --------------------------------------------------------------------------- search


def test_beam_search_scores_match_rescoring_and_sentences_do_not_mix(trained):
    model, _ = trained
    net, tokenizer = model.net, model.target_tokenizer
    sentences = ["three hundred plus four", "nine plus nineteen", "five hundred sixty two plus "
                 "seven hundred eleven"]
    encoded = [model.source_tokenizer.encode(s) for s in sentences]
    lengths = torch.tensor([len(e) for e in encoded])
    source = torch.zeros(3, int(lengths.max()), dtype=torch.long)
    for b, ids in enumerate(encoded):
        source[b, :len(ids)] = torch.tensor(ids)
    bos, eos = tokenizer.token_to_id(BOS), tokenizer.token_to_id(EOS)
    together = beam_search([net], source, lengths, beam_size=4, bos_id=bos, eos_id=eos,
                           alpha=0.0, n_best=3)
    for b in range(3):
        alone = beam_search([net], source[b:b + 1, :lengths[b]], lengths[b:b + 1], beam_size=4,
                            bos_id=bos, eos_id=eos, alpha=0.0, n_best=3)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[b]]
        scores = [h.score for h in together[b]]
        assert scores == sorted(scores, reverse=True)
        # the beam's bookkeeping (reordered states) gives the hypothesis's true log p
        best = together[b][0]
        assert best.log_prob == pytest.approx(_log_prob(net, source[b:b + 1, :lengths[b]],
                                                        best.tokens, bos, eos), abs=1e-4)


def _log_prob(net, source, tokens, bos, eos) -> float:
    encoded = net.encode(source, torch.tensor([source.shape[1]]))
    state, stepper, total = net.initial_state(encoded), net.decoder.step, 0.0
    with torch.no_grad():
        for previous, token in zip([bos, *tokens], [*tokens, eos]):
            step = net.step(stepper, torch.tensor([previous]), state, encoded, 1)
            logits = step.logits[0].clone()
            logits[[0, bos]] = float("-inf")  # search never emits padding or <s>
            total += float(logits.log_softmax(-1)[token])
            state = step.state
    return total


def test_the_native_decoder_step_equals_the_layer_step(trained):
    net = trained[0].net.eval()
    x = torch.randn(3, net.decoder.input_size)
    state = (torch.randn(1, 3, 64), torch.randn(1, 3, 64))
    with torch.no_grad():
        fast, (h, c) = net.stepper()(x, (state[0].clone(), state[1].clone()))
        slow, (h2, c2) = net.decoder.step(x, state)
    assert torch.allclose(fast, slow, atol=1e-5) and torch.allclose(c, c2, atol=1e-5)


# --------------------------------------------------------------------------- the task


def test_a_small_model_learns_the_rule_and_beats_copying(trained):
    model, run = trained
    evaluation = model.evaluate()
    translations = evaluation.details["translations"]
    assert evaluation.model["BLEU"] > 60 and evaluation.model["chrF"] > 60
    assert evaluation["copy"]["BLEU"] < 5
    assert len(translations) == evaluation.details["sentences"]
    loaded = Translator.load(run)
    sentences = [s for s, _ in pairs(20, seed=5)]
    assert loaded.translate(sentences) == model.translate(sentences)


def test_an_ensemble_of_one_model_twice_translates_as_the_model(trained):
    model, run = trained
    sentences = [s for s, _ in pairs(30, seed=7)]
    assert model.translate(sentences, ensemble=[Translator.load(run)]) == model.translate(
        sentences)


def test_stream_yields_in_input_order_with_n_best(trained):
    model, _ = trained
    sentences = [s for s, _ in pairs(7, seed=3)]
    streamed = list(model.stream(sentences, beam_size=3, n_best=2, chunk_size=3))
    assert len(streamed) == 7 and all(len(h) == 2 for h in streamed)
    assert [model.decode(h[0]) for h in streamed] == model.translate(sentences, beam_size=3)


@pytest.mark.parametrize("options", [
    {"attention": "additive", "input_feeding": False},
    {"attention": "dot", "self_attention_layers": 1, "shared_vocabulary": False,
     "lstm": {"layer_norm": True}},
])
def test_variants_train_and_translate(corpus, options):
    model = Translator(small_config(epochs=1, **options))
    report = model.fit(corpus)
    assert report.result.steps > 0
    assert isinstance(model.translate("one plus two"), str)


def test_alignment_has_a_row_per_output_piece(trained):
    model, _ = trained
    alignment = model.align("three hundred plus four", "3 0 0 + 4")
    assert alignment.weights.shape == (6, 4)
    assert torch.allclose(alignment.weights.sum(1), torch.ones(6), atol=1e-5)
    assert alignment.target_pieces[-1] == EOS


# --------------------------------------------------------------------------- CLI


def test_cli_trains_translates_evaluates_and_inspects(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["translate", "train", "--data", str(corpus), "--run-dir", str(run),
                 "--tokenizer", "word", "--embedding-dim", "16", "--hidden-size", "32",
                 "--epochs", "2", "--batch-size", "400", "--quiet",
                 "--source-language", "en", "--target-language", "digits"]) == 0
    assert "run written to" in capsys.readouterr().out
    assert main(["translate", "translate", "--run-dir", str(run), "--text", "one plus two",
                 "--text", "four plus five", "--beam-size", "2"]) == 0
    assert capsys.readouterr().out.count("\n") == 2  # one line per sentence
    out = tmp_path / "translations.txt"
    assert main(["translate", "evaluate", "--run-dir", str(run), "--limit", "10",
                 "--output", str(out)]) == 0
    assert "copy the source" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 10
    look = tmp_path / "look"
    assert main(["translate", "inspect", "--run-dir", str(run), "--text", "one plus two",
                 "--output-dir", str(look)]) == 0
    assert (look / "attention.png").stat().st_size > 0
    assert "rgba" in (look / "attention.html").read_text()
    # a language pair the model was not trained for
    assert main(["translate", "translate", "--run-dir", str(run), "--text", "x",
                 "--target-language", "de"]) == 2
    assert "not --target-language de" in capsys.readouterr().err


def test_misaligned_files_and_bad_tables_are_refused(tmp_path, capsys):
    english, german = tmp_path / "train.en", tmp_path / "train.de"
    english.write_text("one\ntwo\nthree\n")
    german.write_text("eins\nzwei\n")
    run = tmp_path / "run"
    assert main(["translate", "train", "--data", str(english), str(german),
                 "--run-dir", str(run)]) == 2
    assert "not line-aligned" in capsys.readouterr().err and not run.exists()
    table = tmp_path / "three.tsv"
    table.write_text("a\tb\tc\n1\t2\t3\n")
    with pytest.raises(LstmkitError, match="--source-column"):
        read_parallel(table)
    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes("source\ttarget\nS\xfc\xdf\tsweet\n".encode("latin-1"))
    with pytest.raises(LstmkitError, match="not UTF-8"):
        read_parallel(latin1)


def test_empty_lines_are_left_out_with_a_warning(tmp_path, caplog):
    english, german = tmp_path / "a.en", tmp_path / "a.de"
    english.write_text("one\n\nthree\nfour\n")
    german.write_text("eins\nzwei\n\nvier\n")
    with caplog.at_level(logging.WARNING, logger="lstmkit"):
        text = read_parallel([english, german])
    assert text.sources == ["one", "four"] and text.targets == ["eins", "vier"]
    assert "empty side (rows 2, 3)" in caplog.text


def test_unknown_words_and_overlong_sentences_are_warned_about(trained, caplog):
    model, _ = trained
    with caplog.at_level(logging.WARNING, logger="lstmkit"):
        model.translate("one plus zwölf")
        model.translate(" ".join(["one plus two"] * 20))
    assert "not in the model's vocabulary" in caplog.text
    assert "more than any the model was trained on" in caplog.text


def test_evaluating_the_held_out_part_needs_the_unchanged_data(corpus, tmp_path):
    changed = tmp_path / "numbers.tsv"
    changed.write_bytes(corpus.read_bytes())
    model = Translator(small_config(epochs=1))
    model.fit(changed)
    with changed.open("a") as file:
        file.write("one\t1\n")
    with pytest.raises(LstmkitError, match="changed since the model was trained"):
        model.evaluate()


def test_checkpoint_average_is_the_mean_of_the_last_epochs_and_survives_a_resume(tmp_path):
    from lstmkit.tasks.translate.averaging import WeightAverage

    layer = torch.nn.Linear(2, 2)
    average = WeightAverage(2, tmp_path)
    assert average.average() is None  # nothing to average yet
    seen = []
    for epoch in (1, 2, 3):
        torch.nn.init.constant_(layer.weight, float(epoch))
        seen.append(layer.weight.detach().clone())
        average.on_epoch_end(epoch, layer)
    assert average.epochs() == [2, 3]
    assert torch.allclose(average.average()["weight"], (seen[1] + seen[2]) / 2)
    resumed = WeightAverage(2, tmp_path, resumed=True)  # a killed run, read back
    assert resumed.epochs() == [2, 3]
    assert torch.allclose(resumed.average()["weight"], average.average()["weight"])
