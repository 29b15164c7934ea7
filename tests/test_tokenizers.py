"""Tokenizers: round trips, unknowns, reserved ids, saving and loading."""

import pytest

from lstmkit.data.tokenizers import (
    KINDS,
    PAD_ID,
    UNK_ID,
    build_tokenizer,
    load_tokenizer,
    tokenizer_from_json,
)
from lstmkit.errors import LstmkitError

TEXTS = ["the cat sat on the mat", "the dog ate my homework!", "Élan vital, naïve café"]


def test_char_round_trip_and_unknowns():
    tokenizer = build_tokenizer("char", TEXTS)
    assert tokenizer.decode(tokenizer.encode("the cat ate")) == "the cat ate"
    ids = tokenizer.encode("the zoo")  # z is not in the training texts
    assert ids.count(UNK_ID) == 1
    assert tokenizer.count_unknowns([ids, tokenizer.encode("zz")]) == 3
    assert tokenizer.tokens("caz") == ["c", "a", "<unk>"]


def test_word_vocabulary_size_min_count_and_lowercase():
    tokenizer = build_tokenizer("word", TEXTS, min_count=2)
    assert tokenizer.vocabulary[2:] == ["the"]  # the only word seen twice
    tokenizer = build_tokenizer("word", TEXTS, vocab_size=4)
    assert tokenizer.vocab_size == 4
    assert tokenizer.vocabulary[2] == "the"  # the most frequent word survives the cap
    lower = build_tokenizer("word", ["The THE the"], lowercase=True)
    assert lower.encode("tHe") == [2]
    assert build_tokenizer("word", TEXTS).decode(
        build_tokenizer("word", TEXTS).encode("the dog ate my homework!")
    ) == "the dog ate my homework !"


def test_bpe_is_lossless_and_never_unknown():
    tokenizer = build_tokenizer("bpe", TEXTS * 5, vocab_size=300)
    text = "naïve zebras 😀 sat  twice"
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert tokenizer.count_unknowns([ids]) == 0
    assert "".join(tokenizer.tokens("zebras sat  twice")) == "zebras sat  twice"
    assert tokenizer.encode_many([text, "the"]) == [ids, tokenizer.encode("the")]


@pytest.mark.parametrize("kind", KINDS)
def test_reserved_ids_specials_and_save_load(kind, tmp_path):
    options = {"vocab_size": 300} if kind == "bpe" else {}
    tokenizer = build_tokenizer(kind, TEXTS, specials=["<eos>"], **options)
    assert tokenizer.token_to_id("<pad>") == PAD_ID
    assert tokenizer.token_to_id("<unk>") == UNK_ID
    assert tokenizer.token_to_id("<eos>") == 2
    assert tokenizer.decode([PAD_ID, *tokenizer.encode("the cat"), PAD_ID]).strip() == "the cat"
    tokenizer.save(tmp_path / "tokenizer.json")
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert type(loaded) is type(tokenizer) and loaded.vocab_size == tokenizer.vocab_size
    for text in TEXTS + ["unseen qz words"]:
        assert loaded.encode(text) == tokenizer.encode(text)
    assert tokenizer_from_json(tokenizer.to_json()).encode("cat") == tokenizer.encode("cat")


def test_bad_options_and_files(tmp_path):
    with pytest.raises(LstmkitError, match="unknown tokenizer"):
        build_tokenizer("sentencepiece", TEXTS)
    with pytest.raises(LstmkitError, match="leaves no room"):
        build_tokenizer("word", TEXTS, vocab_size=2)
    with pytest.raises(LstmkitError, match="min_count"):
        build_tokenizer("word", TEXTS, min_count=99)
    with pytest.raises(LstmkitError, match="at least 258"):
        build_tokenizer("bpe", TEXTS, vocab_size=100)
    (tmp_path / "bad.json").write_text('{"kind": "word"}')
    with pytest.raises(LstmkitError, match="damaged"):
        load_tokenizer(tmp_path / "bad.json")
