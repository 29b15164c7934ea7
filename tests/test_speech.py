"""Speech recognition: a recogniser learns, streams exactly what it transcribes, fuses a
character LM, and refuses bad audio with a clear message from the CLI.

The recordings are tones (tests/support/tone_speech.py: each letter its own pitch), so
a small model learns them in seconds without espeak-ng; the corpus command's own test
is in test_speech_corpus.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from tone_speech import SAMPLE_RATE, write_tone_corpus

from lstmkit.data.audio import log_mel, read_audio
from lstmkit.data.speech_data import read_speech_data
from lstmkit.errors import LstmkitError
from lstmkit.speech import Recogniser, SpeechConfig, TrainConfig
from lstmkit.tasks.speech import CharacterLanguageModel
from lstmkit.tasks.speech.decoding import prefix_beam_search


def small_config(**options) -> SpeechConfig:
    train = TrainConfig(epochs=options.pop("epochs", 25), batch_size=3000, lr=1e-2,
                        patience=None, progress=False, warmup_steps=10)
    return SpeechConfig(features={"n_mels": 24, "f_max": 4000.0}, hidden_size=32,
                        num_layers=1, stack=2, frequency_masks=0, time_masks=1,
                        validation_utterances=20, beam_size=4, train=train, **options)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tones")
    return {"train": write_tone_corpus(root, 100, seed=1, name="train.csv"),
            "test": write_tone_corpus(root, 20, seed=2, name="test.csv"),
            "cache": root / "cache"}


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> dict[str, Path]:
    """A bidirectional and a streaming (forward-only) model of the tone corpus."""
    runs = {}
    for name, bidirectional in (("offline", True), ("streaming", False)):
        run = tmp_path_factory.mktemp("runs") / name
        Recogniser(small_config(bidirectional=bidirectional)).fit(
            corpus["train"], run, validation=corpus["test"], cache_dir=corpus["cache"])
        runs[name] = run
    return runs


def test_the_recogniser_learns_unseen_recordings(trained, corpus):
    model = Recogniser.load(trained["offline"])
    evaluation = model.evaluate(corpus["test"], cache_dir=corpus["cache"])
    assert evaluation.model["CER"] < 0.1, evaluation.table()
    assert evaluation["greedy"]["CER"] < 0.1
    assert len(evaluation.details["transcripts"]) == 20
    # the streaming model learns too (less well: it hears no future)
    streaming = Recogniser.load(trained["streaming"]).evaluate(corpus["test"],
                                                               cache_dir=corpus["cache"])
    assert streaming.model["CER"] < 0.3, streaming.table()


def test_transcribe_gives_words_with_times_in_order(trained, corpus):
    model = Recogniser.load(trained["offline"])
    path = sorted((corpus["test"].parent / "audio").glob("2-*.wav"))[0]
    transcript = model.transcribe(path)
    assert transcript.text and transcript.words
    assert " ".join(w.text for w in transcript.words) == transcript.text
    starts = [w.start for w in transcript.words]
    assert starts == sorted(starts) and all(w.end > w.start for w in transcript.words)
    assert transcript.words[-1].end <= transcript.audio_seconds + 0.1
    # a waveform in memory, and a list, give the same
    wave = read_audio(path)
    assert model.transcribe(wave).text == transcript.text
    assert [t.text for t in model.transcribe([path, path])] == [transcript.text] * 2


def test_streaming_steps_are_those_of_the_whole_recording(trained, corpus):
    model = Recogniser.load(trained["streaming"])
    path = sorted((corpus["test"].parent / "audio").glob("2-*.wav"))[3]
    wave = read_audio(path)
    whole = model.log_probs([log_mel(wave, model.config.feature_config)])[0]
    stream = model.stream()
    rng = np.random.default_rng(0)
    partials, start = [], 0
    while start < len(wave):
        size = int(rng.integers(50, 3000))
        partials.append(stream.push(wave[start:start + size]))
        start += size
    final = stream.finish()
    torch.testing.assert_close(torch.cat(stream.log_probs), whole, atol=1e-5, rtol=1e-5)
    assert final.text == model.transcribe(path).text
    # partial transcripts only grow, each a prefix of the next
    assert all(b.startswith(a) for a, b in zip(partials, partials[1:]))
    assert stream.chunk_seconds and final.compute_seconds > 0


def test_a_bidirectional_model_refuses_to_stream(trained):
    with pytest.raises(LstmkitError, match="bidirectional.*--streaming"):
        Recogniser.load(trained["offline"]).stream()


def test_a_character_language_model_scores_the_beam(trained, corpus, tmp_path):
    from lstmkit.lm import LanguageModel, LanguageModelConfig

    text = tmp_path / "text.txt"
    rng = np.random.default_rng(0)
    text.write_text("".join(" ".join(rng.choice(["ab", "cd", "abc", "d"], 3)) + "\n"
                            for _ in range(300)), encoding="utf-8")
    lm = LanguageModel(LanguageModelConfig(
        embedding_dim=8, hidden_size=16, num_layers=1, bptt=20,
        train=TrainConfig(epochs=2, batch_size=4, patience=None, shuffle=False,
                           progress=False)))
    lm.fit(text, tmp_path / "lm", cache_dir=tmp_path / "cache")
    model = Recogniser.load(trained["offline"])
    # the LM's text lacks most of the alphabet: fusion says so
    with pytest.raises(LstmkitError, match="lacks"):
        CharacterLanguageModel.load(tmp_path / "lm", model.config.alphabet)
    scorer = CharacterLanguageModel.load(tmp_path / "lm", " abcd")
    log_probs = torch.randn(30, 5).log_softmax(-1)
    plain = prefix_beam_search(log_probs, beam_size=4)[0]
    fused = prefix_beam_search(log_probs, beam_size=4, scorer=scorer, lm_weight=1.0)[0]
    assert fused.score != pytest.approx(plain.score)
    # a model over this alphabet evaluates with the LM beside the beam without it
    small = Recogniser(small_config(alphabet=" abcd", epochs=1))
    small.fit(corpus["train"], cache_dir=corpus["cache"], validation=corpus["test"])
    evaluation = small.evaluate(corpus["test"], language_model=scorer, lm_weight=0.3,
                                cache_dir=corpus["cache"])
    assert set(evaluation.rows) == {"model", "greedy", "no_lm"}
    assert "LM" in evaluation.labels["model"]


# ------------------------------------------------------------------------- the CLI


def lstmkit(*arguments: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lstmkit", *map(str, arguments)],
                          capture_output=True, input=stdin, timeout=300)


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


def test_cli_trains_transcribes_evaluates_and_streams(corpus, tmp_path):
    run = tmp_path / "run"
    trained = lstmkit("speech", "train", "--data", corpus["train"], "--validation-data",
                      corpus["test"], "--run-dir", run, "--streaming", "--hidden-size", 16,
                      "--num-layers", 1, "--n-mels", 24, "--epochs", 2, "--quiet",
                      "--cache-dir", corpus["cache"])
    assert trained.returncode == 0, trained.stderr.decode()
    assert (run / "model.safetensors").is_file()
    audio = sorted((corpus["test"].parent / "audio").glob("2-*.wav"))[:2]
    transcribed = lstmkit("speech", "transcribe", "--run-dir", run, *audio, "--timestamps")
    assert transcribed.returncode == 0, transcribed.stderr.decode()
    assert len(transcribed.stdout.decode().splitlines()) == 2
    evaluated = lstmkit("speech", "evaluate", "--run-dir", run, "--data", corpus["test"],
                        "--cache-dir", corpus["cache"], "--beam-size", 2)
    assert evaluated.returncode == 0, evaluated.stderr.decode()
    assert "WER" in evaluated.stdout.decode() and "greedy" in evaluated.stdout.decode()
    streamed = lstmkit("speech", "stream", "--run-dir", run, "--input", audio[0])
    assert streamed.returncode == 0, streamed.stderr.decode()
    assert "real-time factor" in streamed.stderr.decode()
    # raw PCM on standard input gives the same final transcript as the file
    pcm = (read_audio(audio[0]).numpy() * 32767).astype("<i2").tobytes()
    piped = lstmkit("speech", "stream", "--run-dir", run, stdin=pcm)
    assert piped.returncode == 0, piped.stderr.decode()
    assert piped.stdout.decode().splitlines()[-1] == streamed.stdout.decode().splitlines()[-1]
    # a second train into the finished run is refused, the run kept
    again = lstmkit("speech", "train", "--data", corpus["train"], "--run-dir", run)
    assert_user_error(again, "--overwrite")
    assert (run / "model.safetensors").is_file()


def write_manifest(folder: Path, rows: list[tuple[str, str]]) -> Path:
    manifest = folder / "manifest.csv"
    manifest.write_text("audio,transcript\n" + "".join(f"{a},{t}\n" for a, t in rows),
                        encoding="utf-8")
    return manifest


def test_cli_refuses_bad_training_data(corpus, tmp_path):
    audio = sorted((corpus["train"].parent / "audio").glob("1-*.wav"))[:3]
    missing = write_manifest(tmp_path, [(str(audio[0]), "ab"), ("nowhere.wav", "cd")])
    assert_user_error(lstmkit("speech", "train", "--data", missing, "--run-dir",
                              tmp_path / "r1"), "do not exist", "nowhere.wav")
    assert not (tmp_path / "r1").exists()
    unquoted = write_manifest(tmp_path, [(str(a), "Hello, world!") for a in audio])
    assert_user_error(lstmkit("speech", "train", "--data", unquoted, "--run-dir",
                              tmp_path / "r2"), "line 2", "quote")
    punctuated = write_manifest(tmp_path, [(str(a), '"Hello, world!"') for a in audio])
    assert_user_error(lstmkit("speech", "train", "--data", punctuated, "--run-dir",
                              tmp_path / "r2", "--cache-dir", corpus["cache"]),
                      "outside the alphabet", "'!,'", "--alphabet")
    silence = tmp_path / "silence.wav"
    soundfile.write(silence, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    quiet = write_manifest(tmp_path, [(str(silence), "ab")] * 20
                           + [(str(a), "ab") for a in audio])
    assert_user_error(lstmkit("speech", "train", "--data", quiet, "--validation-data", quiet,
                              "--run-dir", tmp_path / "r3", "--cache-dir", corpus["cache"]),
                      "silent", "silence.wav")
    no_columns = tmp_path / "columns.csv"
    no_columns.write_text("file_name,words\na.wav,ab\n", encoding="utf-8")
    assert_user_error(lstmkit("speech", "train", "--data", no_columns, "--run-dir",
                              tmp_path / "r4"), "transcript")
    folder = tmp_path / "untranscribed"
    folder.mkdir()
    shutil.copy(audio[0], folder / "one.wav")
    assert_user_error(lstmkit("speech", "train", "--data", folder, "--run-dir",
                              tmp_path / "r5"), "one.txt")


def test_cli_refuses_bad_audio(trained, tmp_path):
    run = trained["offline"]
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio", encoding="utf-8")
    assert_user_error(lstmkit("speech", "transcribe", "--run-dir", run, not_audio),
                      "notes.wav")
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    assert_user_error(lstmkit("speech", "transcribe", "--run-dir", run, empty), "empty.wav")
    low_rate = tmp_path / "phone.wav"
    soundfile.write(low_rate, np.zeros(4000, dtype=np.float32) + 0.1, 4000)
    assert_user_error(lstmkit("speech", "transcribe", "--run-dir", run, low_rate), "8")
    assert_user_error(lstmkit("speech", "transcribe", "--run-dir", run, tmp_path / "gone.wav"),
                      "gone.wav")
    assert_user_error(lstmkit("speech", "stream", "--run-dir", run, "--input", not_audio),
                      "bidirectional")
    output = tmp_path / "out.txt"
    output.write_text("kept", encoding="utf-8")
    assert_user_error(lstmkit("speech", "transcribe", "--run-dir", run, not_audio, "--output",
                              output), "--overwrite")
    assert output.read_text(encoding="utf-8") == "kept"


def test_silence_transcribes_as_nothing(trained, tmp_path):
    silence = tmp_path / "silence.wav"
    soundfile.write(silence, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    assert Recogniser.load(trained["offline"]).transcribe(silence).text == ""


def test_a_stereo_recording_at_another_rate_is_read_as_mono_16k(trained, corpus, tmp_path):
    path = sorted((corpus["test"].parent / "audio").glob("2-*.wav"))[0]
    wave, _ = soundfile.read(path, dtype="float32")
    from scipy.signal import resample_poly

    stereo = np.stack([resample_poly(wave, 441, 160)] * 2, axis=1)
    converted = tmp_path / "stereo.flac"
    soundfile.write(converted, stereo, 44100)
    model = Recogniser.load(trained["offline"])
    assert model.transcribe(converted).text == model.transcribe(path).text


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng is not installed (Debian: apt-get install espeak-ng); "
                           "make setup installs it where it can")
def test_cli_synthesises_a_corpus_a_recogniser_reads(tmp_path):
    made = lstmkit("speech", "corpus", "--output-dir", tmp_path / "corpus", "--utterances", 12)
    assert made.returncode == 0, made.stderr.decode()
    assert "train:" in made.stdout.decode()
    train = read_speech_data(tmp_path / "corpus" / "train.csv")
    assert len(train) >= 8 and all(p.is_file() for p in train.paths)
    assert_user_error(lstmkit("speech", "corpus", "--output-dir", tmp_path / "corpus",
                              "--utterances", 12), "--overwrite")
