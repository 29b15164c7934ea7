"""Speech recognition: lstmkit's LSTM-CTC models beside pocketsphinx, offline and streaming.

Goals (issue 12), on the test part of a corpus synthesised here with espeak-ng (voices and
sentences never heard in training):

- the bidirectional model's WER below pocketsphinx's bundled en-us model on the same
  audio, and its CER under 5%;
- the streaming (forward-only) model's CER within 1.5x of the bidirectional model's;
- streaming: a real-time factor under 0.1 on one thread and under 20 ms of compute per
  100 ms chunk;
- each model trains in at most 15 minutes on this 2-core machine.

Each model trains for ``--budget`` seconds (the whole fit; the corpus's log-mel
features are computed and cached first, timed apart) with ``--threads`` (default 2: the
machine's two cores), one after the other; then, on one thread, every system
transcribes the same ``--limit`` test recordings. pocketsphinx decodes with its default
configuration (benchmarks/peers/run_pocketsphinx.py). Streaming pushes each test
recording in 100 ms chunks through ``Recogniser.stream()`` and times every push. With
``--lm-budget`` a character language model (``lstmkit lm``) learns the sentences found
on this machine that are in neither the validation nor the test part, and the
bidirectional model's beam is fused with it at the weight (0.2, 0.4 or 0.7) with the
lowest WER on 40 validation recordings. ``--reuse`` scores the models a previous run
finished and trains only the others.

    .venv/bin/python benchmarks/speech.py                     # 4,000 utterances, 14 min each
    .venv/bin/python benchmarks/speech.py --quick             # 400 utterances, 2 min each

Spoken digits (real recordings) are benchmarks/spoken_digits.py. Writes
results/speech.md and .json (docs/speech/ keeps the copies the README quotes).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import run_pocketsphinx  # noqa: E402

from lstmkit.data.audio import FeatureConfig, cached_log_mel, read_audio  # noqa: E402
from lstmkit.data.speech_corpus import find_sentences, synthesise_corpus  # noqa: E402
from lstmkit.data.speech_data import read_speech_data  # noqa: E402
from lstmkit.lm import LanguageModel, LanguageModelConfig  # noqa: E402
from lstmkit.speech import (  # noqa: E402
    CharacterLanguageModel,
    Recogniser,
    SpeechConfig,
    TrainConfig,
)

RESULTS = Path(__file__).resolve().parent.parent / "results"
CHUNK_SECONDS = 0.1


def corpus(utterances: int, seed: int) -> Path:
    """The benchmark's corpus (made once per size and seed)."""
    root = RESULTS / f"speech-corpus-{utterances}-{seed}"
    if not (root / "corpus.json").is_file():
        summary = synthesise_corpus(root, utterances=utterances, seed=seed, overwrite=True)
        print(f"synthesised {utterances} utterances in {summary.synthesis_seconds:.0f} s")
    return root


def train(root: Path, bidirectional: bool, budget: float, run_dir: Path) -> dict[str, Any]:
    config = SpeechConfig(bidirectional=bidirectional, train=TrainConfig(
        **{**vars(SpeechConfig().train), "time_budget_s": budget, "progress": False}))
    started = time.perf_counter()
    report = Recogniser(config).fit(root / "train.csv", run_dir, overwrite=True,
                                    validation=root / "validation.csv",
                                    cache_dir=RESULTS / "speech-cache")
    seconds = time.perf_counter() - started
    print(report.summary(), f"({seconds:.0f} s)", flush=True)
    return {"seconds": seconds, "steps": report.result.steps,
            "epochs": report.result.epochs_run, "best_epoch": report.result.best_epoch,
            "validation": report.validation}


def trained(run_dir: Path) -> dict[str, Any]:
    """What a previous run's training was, from its metrics."""
    model = Recogniser.load(run_dir)
    training = model.metrics["training"]
    return {"seconds": training["seconds"], "steps": training["steps"],
            "epochs": training.get("epochs"), "best_epoch": training["best_epoch"],
            "validation": model.metrics["validation_greedy"]}


def language_model(root: Path, name: str, budget: float) -> tuple[Any, dict[str, Any]]:
    """A character LM (lstmkit lm) on the sentences found here that are neither in the
    corpus's validation nor its test part, as a scorer for the beam."""
    held_out = {t for part in ("validation", "test")
                for t in read_speech_data(root / f"{part}.csv").transcripts}
    sentences = [s for s in find_sentences(limit=None) if s not in held_out]
    text = RESULTS / f"{name}-lm.txt"
    text.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    config = LanguageModelConfig(tokenizer="char", embedding_dim=64, hidden_size=512,
                                 num_layers=1, train=TrainConfig(
                                     **{**vars(LanguageModelConfig().train),
                                        "time_budget_s": budget, "progress": False}))
    started = time.perf_counter()
    LanguageModel(config).fit(text, RESULTS / f"{name}-lm", overwrite=True,
                              cache_dir=RESULTS / "speech-cache")
    seconds = time.perf_counter() - started
    scorer = CharacterLanguageModel.load(RESULTS / f"{name}-lm", SpeechConfig().alphabet)
    return scorer, {"sentences": len(sentences), "seconds": seconds}


def fusion_weight(model: Recogniser, scorer: Any, root: Path) -> float:
    """The LM weight with the lowest WER on 40 validation recordings."""
    validation = read_speech_data(root / "validation.csv")
    validation = validation.subset(list(range(min(40, len(validation)))))
    found = {weight: model.evaluate(validation, language_model=scorer, lm_weight=weight,
                                    cache_dir=RESULTS / "speech-cache").model["WER"]
             for weight in (0.2, 0.4, 0.7)}
    return min(found, key=found.get)


def streamed(model: Recogniser, paths: list[Path]) -> dict[str, float]:
    """Every recording pushed in 100 ms chunks: compute per chunk and real-time factor."""
    rate = model.config.feature_config.sample_rate
    size = int(CHUNK_SECONDS * rate)
    pushes, audio, compute = [], 0.0, 0.0
    for path in paths:
        wave = read_audio(path, rate)
        stream = model.stream()
        for start in range(0, len(wave), size):
            stream.push(wave[start:start + size])
        final = stream.finish()
        pushes += stream.chunk_seconds
        audio += final.audio_seconds
        compute += final.compute_seconds
    pushes.sort()
    return {"chunk_ms_median": 1000 * statistics.median(pushes),
            "chunk_ms_p99": 1000 * pushes[int(0.99 * (len(pushes) - 1))],
            "chunk_ms_max": 1000 * pushes[-1], "real_time_factor": compute / audio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budget", type=float, default=840.0, help="seconds per model")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
    parser.add_argument("--limit", type=int, default=120, help="test recordings scored")
    parser.add_argument("--lm-budget", type=float, default=240.0,
                        help="seconds to train the character LM fused into the beam (0: none)")
    parser.add_argument("--reuse", action="store_true",
                        help="score the models a previous run finished; train only the others")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.utterances, args.budget, args.limit = 400, 120.0, 40
    torch.set_num_threads(args.threads)
    root = corpus(args.utterances, args.seed)
    started = time.perf_counter()  # log-mel features, once per corpus (cached)
    for part in ("train", "validation", "test"):
        cached_log_mel(read_speech_data(root / f"{part}.csv").paths, FeatureConfig(),
                       RESULTS / "speech-cache")
    feature_seconds = time.perf_counter() - started
    test = read_speech_data(root / "test.csv")
    test = test.subset(list(range(min(args.limit, len(test)))))
    name = f"speech{'-quick' if args.quick else ''}"
    runs = {"bidirectional": RESULTS / f"{name}-bidirectional",
            "streaming": RESULTS / f"{name}-streaming"}
    training = {kind: (trained(run) if args.reuse and (run / "manifest.json").is_file() else
                       train(root, kind == "bidirectional", args.budget, run))
                for kind, run in runs.items()}
    scorer, fusion = (language_model(root, name, args.lm_budget) if args.lm_budget
                      else (None, None))
    torch.set_num_threads(1)
    rows: dict[str, dict[str, float]] = {}
    for kind, run in runs.items():
        model = Recogniser.load(run)
        evaluation = model.evaluate(test, cache_dir=RESULTS / "speech-cache")
        rows[f"lstmkit {kind} (beam {model.config.beam_size})"] = evaluation.model
        rows[f"lstmkit {kind} (greedy)"] = evaluation["greedy"]
        if scorer is not None and kind == "bidirectional":
            weight = fusion_weight(model, scorer, root)
            fused = model.evaluate(test, language_model=scorer, lm_weight=weight,
                                   cache_dir=RESULTS / "speech-cache")
            rows[f"lstmkit {kind} (beam {model.config.beam_size} + char LM x{weight:g})"] = (
                fused.model)
            fusion["weight"] = weight
        if kind == "streaming":
            stream = streamed(model, test.paths)
    sphinx = run_pocketsphinx.transcribe_manifest(_manifest_of(test))
    rows[f"pocketsphinx {version('pocketsphinx')} en-us"] = {
        "WER": sphinx["wer"], "CER": sphinx["cer"],
        "real-time factor": sphinx["real_time_factor"]}
    best = rows[next(k for k in rows if k.startswith("lstmkit bidirectional (beam"))]
    online = rows[next(k for k in rows if k.startswith("lstmkit streaming (beam"))]
    lines = [f"# Speech recognition: {len(test)} test recordings of {root.name} "
             f"(unseen voices and sentences); trained with {args.threads} threads, "
             "transcribed with one", "",
             "| system | WER | CER | real-time factor |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['WER']:.3f} | {v['CER']:.3f} | {v['real-time factor']:.3f} |"
              for k, v in rows.items()]
    lines += ["", f"- WER, lstmkit bidirectional / pocketsphinx: "
                  f"{best['WER'] / sphinx['wer']:.2f}x",
              f"- CER, streaming / bidirectional: {online['CER'] / max(best['CER'], 1e-9):.2f}x",
              f"- streaming in 100 ms chunks: compute per chunk median "
              f"{stream['chunk_ms_median']:.2f} ms, p99 {stream['chunk_ms_p99']:.2f} ms, max "
              f"{stream['chunk_ms_max']:.2f} ms; real-time factor "
              f"{stream['real_time_factor']:.4f}"]
    lines += [f"- log-mel features of the whole corpus (first run, then cached): "
              f"{feature_seconds:.0f} s"]
    lines += [f"- training ({kind}): {t['seconds']:.0f} s, {t['epochs']} epochs, "
              f"{t['steps']} steps" for kind, t in training.items()]
    report = "\n".join(lines)
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(report + "\n", encoding="utf-8")
    (RESULTS / f"{name}.json").write_text(json.dumps(
        {"rows": rows, "streaming": stream, "training": training,
         "pocketsphinx": {k: v for k, v in sphinx.items() if k != "files"},
         "corpus": str(root), "test_recordings": len(test), "language_model": fusion,
         "feature_seconds": feature_seconds}, indent=2), encoding="utf-8")


def _manifest_of(data: Any) -> Path:
    """The scored recordings as a manifest pocketsphinx's runner reads."""
    path = RESULTS / "speech-scored.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["audio", "transcript"])
        writer.writerows(zip(map(str, data.paths), data.transcripts))
    return path


if __name__ == "__main__":
    main()
