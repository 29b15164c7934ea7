"""Translation: lstmkit's LSTM + attention beside JoeyNMT's LSTM and a Transformer.

Goals (issue 11), on the held-out test part of this machine's gettext English -> LANG
corpus, each system trained for the same wall-clock budget on one thread, one after the
other (never side by side: two trainings on two cores slow each other unevenly):

- lstmkit (beam 5) above JoeyNMT's RNN model in BLEU and chrF, far above copying;
- training throughput (target tokens/s) >= 1.5x JoeyNMT's; beam-5 decoding
  (sentences/s) >= 2x JoeyNMT's;
- a Transformer (torch's layers) with lstmkit's parameter count, in the same table.

Every system reads the same subword pieces: lstmkit's byte-level BPE vocabulary, learnt
on the training part, is handed to JoeyNMT as pre-split text and to the Transformer as
ids; every output is decoded back to text by the same tokenizer and scored by sacreBLEU
against the untouched references. Model sizes match: embeddings E, encoder 2 x H/2,
decoder H, one layer each; JoeyNMT with the same "general" (its "luong") attention and
input feeding.

    .venv/bin/python benchmarks/translate.py                      # de, 20 minutes each
    .venv/bin/python benchmarks/translate.py --language es --budget 600
    .venv/bin/python benchmarks/translate.py --quick              # 5,000 pairs, 60 s each

JoeyNMT runs in its own virtualenv (results/joeynmt-venv, made on the first run; see
benchmarks/peers/run_joeynmt.py). Writes results/translate-LANG.md and .json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import run_joeynmt  # noqa: E402
import transformer_baseline  # noqa: E402

from lstmkit.data.gettext_catalogs import gettext_pairs  # noqa: E402
from lstmkit.data.parallel_text import ParallelText, split_by_source  # noqa: E402
from lstmkit.tasks.translate.metrics import corpus_scores, scored  # noqa: E402
from lstmkit.tasks.translate.translator import BOS, EOS  # noqa: E402
from lstmkit.translate import TrainConfig, TranslationConfig, Translator  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results"
FRACTIONS = (0.05, 0.05)  # validation, test


def corpus(language: str, limit: int | None) -> dict[str, ParallelText]:
    pairs = gettext_pairs(language)
    text = ParallelText([p.source for p in pairs], [p.target for p in pairs],
                        f"gettext en-{language}")
    parts = split_by_source(text, *FRACTIONS)
    if limit is not None:  # a quick run: fewer training pairs, the same test part
        parts["train"] = parts["train"].subset(range(min(limit, len(parts["train"]))))
    return parts


def parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in net.parameters()}.values())


def run_lstmkit(parts: dict[str, ParallelText], language: str, budget: float, beam: int
                ) -> tuple[Translator, dict[str, Any]]:
    train = TrainConfig(epochs=1000, batch_size=2000, lr=2e-3, schedule="cosine",
                        warmup_steps=200, patience=None, time_budget_s=budget, progress=False)
    model = Translator(TranslationConfig(source_language="en", target_language=language,
                                         train=train))
    report = model.fit(parts["train"], validation=parts["validation"])
    test = parts["test"]
    started = time.perf_counter()
    hypotheses = model.translate(test.sources, beam_size=beam)
    decode = time.perf_counter() - started
    return model, {"train_seconds": report.result.seconds, "updates": report.result.steps,
                   "target_tokens_per_s": report.target_tokens_per_second,
                   "parameters": parameters(model.net), "hypotheses": hypotheses,
                   "decode_seconds": decode, "sentences_per_s": len(test) / decode}


def pieces(model: Translator, texts: list[str]) -> list[str]:
    """Each text as the model's subword pieces, space-separated (byte-level BPE pieces
    hold no spaces: a space is spelt "Ġ" inside the piece after it)."""
    tokenizer = model.source_tokenizer
    return [" ".join(tokenizer.id_to_token(i) for i in ids)
            for ids in tokenizer.encode_many(texts)]


def from_pieces(model: Translator, lines: list[str]) -> list[str]:
    tokenizer = model.target_tokenizer
    return [tokenizer.decode([tokenizer.token_to_id(p) for p in line.split()])
            for line in lines]


def run_joeynmt_peer(model: Translator, parts: dict[str, ParallelText], budget: float,
                     beam: int, work: Path, log: Path) -> dict[str, Any]:
    python = run_joeynmt.ensure_venv(RESULTS / "joeynmt-venv", log)
    data = work / "pieces"
    data.mkdir(parents=True, exist_ok=True)
    for part, name in (("train", "train"), ("validation", "dev"), ("test", "test")):
        text = parts[part]
        (data / f"{name}.src").write_text("\n".join(pieces(model, text.sources)) + "\n")
        (data / f"{name}.trg").write_text("\n".join(pieces(model, text.targets)) + "\n")
    c = model.config
    spec = {"work_dir": str(work / "joeynmt"), "data_dir": str(data), "budget_s": budget,
            "threads": 1, "seed": 0, "embedding_dim": c.embedding_dim,
            "hidden_size": c.hidden_size, "encoder_hidden_size": c.hidden_size // 2,
            "num_layers": 1, "dropout": c.dropout, "attention": "luong",
            "batch_size": c.train.batch_size, "lr": c.train.lr, "beam_size": beam,
            "beam_alpha": c.length_penalty, "max_output_length": 2 * c.max_length + 10}
    spec_path = work / "joeynmt-spec.json"
    spec_path.write_text(json.dumps(spec))
    result = run_joeynmt.run(python, spec_path, work / "joeynmt.json", log)
    result["hypotheses"] = from_pieces(model, result.pop("test_hypotheses"))
    return result


def run_transformer(model: Translator, parts: dict[str, ParallelText], budget: float,
                    beam: int) -> dict[str, Any]:
    tokenizer, c = model.target_tokenizer, model.config

    def encoded(text: ParallelText) -> list[tuple[list[int], list[int]]]:
        return list(zip(tokenizer.encode_many(text.sources), tokenizer.encode_many(text.targets)))

    train = [(s, t) for s, t in encoded(parts["train"])
             if 0 < len(s) <= c.max_length and 0 < len(t) <= c.max_length]
    sizes = transformer_baseline.sized_like(parameters(model.net), tokenizer.vocab_size)
    result = transformer_baseline.train_and_translate(
        train, encoded(parts["validation"]), tokenizer.encode_many(parts["test"].sources),
        tokenizer.vocab_size, tokenizer.token_to_id(BOS), tokenizer.token_to_id(EOS),
        budget_s=budget, seed=0, beam_size=beam, length_penalty=c.length_penalty,
        max_output_ratio=c.max_output_ratio, sizes=sizes)
    result["hypotheses"] = [tokenizer.decode(ids) for ids in result.pop("test_hypotheses_ids")]
    result["sizes"] = sizes
    return result


def table(rows: dict[str, dict[str, Any]], test: ParallelText, title: str) -> str:
    lines = [f"## {title}", "",
             "| system | parameters | training s | updates | target tokens/s | BLEU | chrF | "
             "beam decoding sentences/s |", "|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        if "error" in row:
            lines.append(f"| {name} | failed: {row['error']} |||||||")
            continue
        cells = [f"{row['parameters']:,}" if "parameters" in row else "",
                 f"{row['train_seconds']:.0f}" if "train_seconds" in row else "",
                 f"{row['updates']:,}" if "updates" in row else "",
                 f"{row['target_tokens_per_s']:,.0f}" if "target_tokens_per_s" in row else "",
                 f"{row['BLEU']:.2f}", f"{row['chrF']:.2f}",
                 f"{row['sentences_per_s']:.1f}" if "sentences_per_s" in row else ""]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ours, peer = rows.get("lstmkit"), rows.get("JoeyNMT 2.3.0")
    if ours and peer and "error" not in peer:
        lines += ["", f"lstmkit / JoeyNMT: training throughput "
                      f"{ours['target_tokens_per_s'] / peer['target_tokens_per_s']:.2f}x, "
                      f"beam decoding {ours['sentences_per_s'] / peer['sentences_per_s']:.2f}x, "
                      f"BLEU {ours['BLEU'] - peer['BLEU']:+.2f}, "
                      f"chrF {ours['chrF'] - peer['chrF']:+.2f}"]
    lines += ["", f"Test part: {len(test):,} sentences. " + "; ".join(rows["lstmkit"]
                                                                    ["signatures"])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--language", default="de", help="gettext target language (default de)")
    parser.add_argument("--budget", type=float, default=1200.0,
                        help="training seconds per system (default 1200)")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--systems", nargs="+", default=["lstmkit", "joeynmt", "transformer"])
    parser.add_argument("--quick", action="store_true", help="5,000 training pairs, 60 s each")
    args = parser.parse_args()
    torch.set_num_threads(1)
    budget, limit = (60.0, 5000) if args.quick else (args.budget, None)
    parts = corpus(args.language, limit)
    test = parts["test"]
    print(f"gettext en-{args.language}: " + ", ".join(f"{n} {len(p):,}" for n, p in
                                                      parts.items()), flush=True)
    RESULTS.mkdir(exist_ok=True)
    log = RESULTS / f"translate-{args.language}.log"
    rows: dict[str, dict[str, Any]] = {}
    model, rows["lstmkit"] = run_lstmkit(parts, args.language, budget, args.beam)
    print("lstmkit done", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        if "joeynmt" in args.systems:
            try:
                rows["JoeyNMT 2.3.0"] = run_joeynmt_peer(model, parts, budget, args.beam,
                                                         Path(folder), log)
            except RuntimeError as error:
                rows["JoeyNMT 2.3.0"] = {"error": str(error).splitlines()[0]}
            print("JoeyNMT done", flush=True)
    if "transformer" in args.systems:
        rows["Transformer (torch)"] = run_transformer(model, parts, budget, args.beam)
        print("Transformer done", flush=True)
    rows["copy the source"] = {"hypotheses": test.sources}
    for row in rows.values():
        if "hypotheses" in row:
            scores, row["signatures"] = scored(row["hypotheses"], test.targets)
            row.update(scores)
    assert corpus_scores(test.sources, test.targets) == {
        k: rows["copy the source"][k] for k in ("BLEU", "chrF")}
    title = (f"gettext en-{args.language}, {budget:.0f} s of training each, 1 thread, "
             f"beam {args.beam}")
    text = table(rows, test, title)
    print(text)
    stem = RESULTS / f"translate-{args.language}{'-quick' if args.quick else ''}"
    stem.with_suffix(".md").write_text(text + "\n")
    stem.with_suffix(".json").write_text(json.dumps(
        {name: {k: v for k, v in row.items() if k != "hypotheses"} | {
            "sample": row.get("hypotheses", [])[:20]} for name, row in rows.items()},
        indent=1, default=str))


if __name__ == "__main__":
    main()
