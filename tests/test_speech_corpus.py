"""The espeak-ng speech corpus: manifests, 16 kHz audio, disjoint parts, determinism."""

import csv
import shutil

import pytest
import soundfile

from lstmkit.data import speech_corpus
from lstmkit.data.speech_corpus import (
    ALPHABET,
    SAMPLE_RATE,
    find_sentences,
    normalise_transcript,
    synthesise_corpus,
)
from lstmkit.errors import LstmkitError

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (Debian: apt-get install espeak-ng)",
)


def read_rows(path):
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["audio", "transcript", "speaker"]
        return list(reader)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    root = tmp_path_factory.mktemp("speech") / "corpus"
    return synthesise_corpus(root, utterances=12, seed=3, noise_fraction=0.5)


def test_normalise_transcript():
    assert normalise_transcript("  Don\u2019t  PANIC, it's 'fine'!  Caf\u00e9 e-mail ") == (
        "don't panic it's fine cafe e mail")


def test_find_sentences_keeps_what_espeak_says_as_written(tmp_path):
    source = tmp_path / "text.txt"
    source.write_text(
        "The quick brown fox jumps over the lazy dog.\n"
        "It has 3 numbers in it somewhere.\n"  # digits
        "Visit https://example.org for more.\n"  # URL
        "The GNU project makes free software.\n"  # acronym, spelt out by espeak
        "Too short.\n"
        "Apples, pears and plums are fruit. Dogs don't like baths at all!\n"
        "the quick brown fox jumps over the lazy dog\n",  # a duplicate once normalised
        encoding="utf-8")
    sentences = find_sentences(source)
    assert sorted(sentences) == ["apples pears and plums are fruit",
                                 "dogs don't like baths at all",
                                 "the quick brown fox jumps over the lazy dog"]
    assert find_sentences(source) == sentences  # the same order every time
    default = find_sentences(limit=50)
    assert len(default) == 50
    assert all(4 <= len(s.split()) <= 14 and set(s) <= set(ALPHABET) for s in default)


def test_manifests_audio_and_counts(corpus):
    assert set(corpus.manifests) == {"train", "validation", "test"}
    rows = {part: read_rows(path) for part, path in corpus.manifests.items()}
    assert {part: len(r) for part, r in rows.items()} == corpus.utterances
    assert sum(corpus.utterances.values()) == 12
    assert all(corpus.utterances[part] >= 1 for part in rows)
    for part, part_rows in rows.items():
        for row in part_rows:
            samples, rate = soundfile.read(corpus.manifests[part].parent / row["audio"])
            assert rate == SAMPLE_RATE and samples.ndim == 1 and len(samples) > SAMPLE_RATE // 2
            assert row["transcript"] and set(row["transcript"]) <= set(ALPHABET)
            assert row["transcript"] == normalise_transcript(row["transcript"])
    assert (corpus.root / "corpus.json").is_file()
    assert not list(corpus.root.parent.glob(".corpus.*"))  # no staging folder left


def test_parts_disjoint_by_sentence_and_voice(corpus):
    rows = {part: read_rows(path) for part, path in corpus.manifests.items()}
    sentences = {part: {r["transcript"] for r in rows[part]} for part in rows}
    speakers = {part: {r["speaker"] for r in rows[part]} for part in rows}
    assert not sentences["train"] & sentences["validation"]
    assert not sentences["test"] & (sentences["train"] | sentences["validation"])
    assert not speakers["test"] & (speakers["train"] | speakers["validation"])
    assert not speakers["validation"] & speakers["train"]


def test_same_seed_same_corpus(corpus, tmp_path):
    again = synthesise_corpus(tmp_path / "again", utterances=12, seed=3, noise_fraction=0.5,
                              jobs=1)
    for part, path in corpus.manifests.items():
        assert again.manifests[part].read_bytes() == path.read_bytes()
    row = read_rows(corpus.manifests["train"])[0]
    assert ((tmp_path / "again" / row["audio"]).read_bytes()
            == (corpus.root / row["audio"]).read_bytes())
    other = synthesise_corpus(tmp_path / "other", utterances=12, seed=4)
    assert other.manifests["train"].read_bytes() != corpus.manifests["train"].read_bytes()


@needs_espeak
def test_existing_folder_refused_unless_overwrite(tmp_path):
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(LstmkitError, match="already exists.*--overwrite"):
        synthesise_corpus(out, utterances=3)
    assert (out / "keep.txt").read_text() == "mine"
    synthesise_corpus(out, utterances=3, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "test.csv").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["corpus"]  # nothing left beside it


def test_missing_espeak_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(speech_corpus, "ESPEAK", "espeak-ng-not-here")
    with pytest.raises(LstmkitError, match="espeak-ng is not installed.*apt-get install"):
        synthesise_corpus(tmp_path / "corpus", utterances=3)
    assert not (tmp_path / "corpus").exists()
