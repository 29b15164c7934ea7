"""pocketsphinx (CMU Sphinx, offline) on a speech corpus manifest: the classic HMM-GMM
recogniser with its bundled US English acoustic model, CMU dictionary and trigram
language model, none of them trained on the corpus.

    .venv/bin/python benchmarks/peers/run_pocketsphinx.py --manifest test.csv \\
        --output result.json

The manifest is a CSV with the columns ``audio`` (relative to the manifest's folder) and
``transcript``, as :func:`lstmkit.data.speech_corpus.synthesise_corpus` writes. Every file
is read, turned into 16 kHz 16-bit mono PCM and decoded as one utterance by a
``pocketsphinx.Decoder`` with its default configuration. Writes per-file hypotheses, the
corpus WER and CER (jiwer, on transcripts normalised as lstmkit normalises its own), the
decoding wall time and the real-time factor (decoding seconds per second of audio).

Import :func:`transcribe_manifest` to use it from another benchmark.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000


def _normalise(text: str) -> str:
    """lstmkit's transcript normalisation, so both sides are compared the same way."""
    try:
        from lstmkit.data.speech_corpus import normalise_transcript
    except ImportError:  # run outside lstmkit's environment: a close equivalent
        return " ".join(text.lower().replace("-", " ").split())
    return normalise_transcript(text)


def _pcm16(path: Path) -> tuple[bytes, float]:
    """The file as 16 kHz 16-bit mono little-endian PCM, and its length in seconds."""
    import soundfile
    from scipy.signal import resample_poly

    samples, rate = soundfile.read(path, dtype="float64", always_2d=True)
    samples = samples.mean(axis=1)
    if rate != SAMPLE_RATE:
        divisor = math.gcd(SAMPLE_RATE, rate)
        samples = resample_poly(samples, SAMPLE_RATE // divisor, rate // divisor)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    return pcm.tobytes(), len(samples) / SAMPLE_RATE


def _read_manifest(manifest: Path) -> list[dict[str, str]]:
    with manifest.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"audio", "transcript"} <= set(rows[0]):
        raise SystemExit(f"{manifest}: a manifest needs rows with the columns audio and "
                         "transcript")
    return rows


def transcribe_manifest(manifest: str | Path) -> dict[str, Any]:
    """Decode every file of ``manifest`` with pocketsphinx's bundled en-us models.

    Returns ``{"peer", "manifest", "utterances", "wer", "cer", "audio_seconds",
    "decode_seconds", "real_time_factor", "load_seconds", "files": [{"audio",
    "reference", "hypothesis", "seconds"}]}``; WER and CER are corpus-level (jiwer over
    all references and hypotheses), and a file decoded to nothing counts as all deleted.
    """
    import jiwer
    import pocketsphinx

    manifest = Path(manifest)
    rows = _read_manifest(manifest)
    pocketsphinx.set_loglevel("ERROR")  # its INFO log is thousands of lines per file
    started = time.perf_counter()
    decoder = pocketsphinx.Decoder()  # default config: bundled en-us hmm, dict and lm
    load_seconds = time.perf_counter() - started

    files = []
    audio_seconds = decode_seconds = 0.0
    for row in rows:
        path = manifest.parent / row["audio"]
        pcm, seconds = _pcm16(path)
        started = time.perf_counter()
        decoder.start_utt()
        decoder.process_raw(pcm, no_search=False, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        decode_seconds += time.perf_counter() - started
        audio_seconds += seconds
        files.append({
            "audio": row["audio"],
            "reference": _normalise(row["transcript"]),
            "hypothesis": _normalise(hypothesis.hypstr if hypothesis else ""),
            "seconds": round(seconds, 3),
        })
    references = [f["reference"] for f in files]
    hypotheses = [f["hypothesis"] for f in files]  # an empty one counts as all deleted
    return {
        "peer": f"pocketsphinx {_version()} (bundled en-us model, default config)",
        "manifest": str(manifest),
        "utterances": len(files),
        "wer": float(jiwer.wer(references, hypotheses)),
        "cer": float(jiwer.cer(references, hypotheses)),
        "audio_seconds": round(audio_seconds, 2),
        "decode_seconds": round(decode_seconds, 2),
        "real_time_factor": round(decode_seconds / audio_seconds, 4) if audio_seconds else None,
        "load_seconds": round(load_seconds, 2),
        "files": files,
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pocketsphinx")
    except PackageNotFoundError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    args = parser.parse_args()
    if not args.manifest.is_file():
        sys.exit(f"{args.manifest} does not exist; pass a manifest CSV (e.g. test.csv)")
    result = transcribe_manifest(args.manifest)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"pocketsphinx on {result['utterances']} files ({result['audio_seconds']:.0f} s of "
          f"audio): WER {result['wer']:.3f}, CER {result['cer']:.3f}, "
          f"decode {result['decode_seconds']:.1f} s (RTF {result['real_time_factor']})")


if __name__ == "__main__":
    main()
