"""JoeyNMT's side of benchmarks/translate.py: train an LSTM translation model for a fixed
wall-clock budget, beam-decode the test set, write one JSON file.

Runs inside JoeyNMT's own virtualenv (joeynmt 2.3.0 and torch 2.13.0; never lstmkit's):

    results/joeynmt-venv/bin/python benchmarks/peers/run_joeynmt.py --spec spec.json \\
        --out joeynmt.json

The main benchmark calls :func:`ensure_venv` and :func:`run`; this module imports only the
standard library at the top (JoeyNMT and torch lazily), so lstmkit's venv can import it.

spec.json: {"work_dir", "data_dir" (train/dev/test .src/.trg, one sentence a line, already
subword-tokenised: pieces separated by single spaces), "budget_s", "threads", "seed",
"embedding_dim", "hidden_size", "num_layers", "dropout", "attention" ("bahdanau" or
"luong"), "batch_size" (tokens), "lr", "beam_size", "beam_alpha", "max_output_length"}.
Optional keys (defaults in brackets): "encoder_hidden_size" [hidden_size; per direction,
so the encoder's states have twice this size], "tie_target_embeddings" [true exactly when
embedding_dim == hidden_size, see below], "clip_grad_norm" [1.0, lstmkit's default],
"decode_batch_size" [64 sentences].

result.json: {"train_seconds", "updates", "target_tokens_trained", "target_tokens_per_s",
"parameters", "test_hypotheses" (one per test.src line: JoeyNMT's output pieces joined by
single spaces, special symbols removed), "decode_seconds", "sentences_per_s",
"joeynmt_version", "notes"} plus "epochs" (the epoch training stopped in, 1-based),
"src_vocab_size", "trg_vocab_size" (with JoeyNMT's 4 special symbols),
"tied_target_embeddings", "dev_perplexity", "config" (JoeyNMT's, as given to it).

What is set up, and why:

* Data: JoeyNMT's "plain" dataset, level "word" (a line split on single spaces, no
  pretokenizer, no lowercasing or normalisation), no length filter; one vocabulary per
  side from the training files, every piece seen at least once, no size cap. JoeyNMT
  builds no joint vocabulary from data, so the source and target tables are separate
  (a joint table on the other side gives it a larger softmax: compare the sizes).
  JoeyNMT silently drops empty lines per side, which would misalign the pairs, so the
  files are copied first into work_dir: runs of spaces collapsed, train/dev pairs with an
  empty side dropped, and empty test lines left out of decoding and answered with "".
* Model: bidirectional LSTM encoder; LSTM decoder (``type: "recurrent"`` given
  explicitly: JoeyNMT's default decoder is a Transformer) with input feeding and
  JoeyNMT's "bridge" initial state (tanh of a projection of the encoder's final state).
  JoeyNMT's decoder attends with the *current* state h_t (Luong's order: step the LSTM,
  attend, then att_t = tanh(W [h_t; c_t]) feeds the softmax and the next step), for both
  scores: "bahdanau" is the additive score (no bias) in that order, not Bahdanau's
  h_{t-1} query; "luong" is the bilinear ("general") score. ``dropout`` is used on the decoder's and
  encoder's inputs (embeddings, and with input feeding the fed attention vector too),
  between stacked LSTM layers and on [h_t; c_t] (JoeyNMT's hidden_dropout). Target
  embeddings can only be tied to the output layer ("tied_softmax") when embedding_dim ==
  hidden_size (JoeyNMT's output layer reads att_t, of hidden_size); tied_embeddings
  (source = target) would need a joint vocabulary, which is not used. JoeyNMT's default
  initialisation (Xavier uniform, zero biases, LSTM forget-gate bias 1).
* Training: Adam (0.9, 0.999) at the constant ``lr`` (as lstmkit's TrainConfig defaults:
  constant rate, no weight decay, gradient norm clipped at 1; JoeyNMT 2.3.0 requires
  some scheduler, so "exponential" with factor 1 is used: its "plateau" passes
  ``verbose=``, which torch 2.13 removed), cross-entropy without label smoothing averaged
  over target tokens, token batches ("batch_type: token": a batch closes once (longest
  sentence + 1) x sentences reaches ``batch_size``, padding included, shuffled without
  length bucketing), one process, no data workers, seed ``seed`` (the global torch RNG
  is seeded before the model is built as well; JoeyNMT seeds it only after).
* Budget: JoeyNMT has no time limit. A step hook on its optimizer (torch's
  ``register_step_post_hook``) raises JoeyNMT's own "maximum number of updates" flag at
  the first update that ends ``budget_s`` or later after training started, so its loop
  stops after that update as it would at a step limit and saves the model; nothing is
  killed and no work is lost. The last update can end past the budget by one update's
  time; train_seconds is measured to its end, from the call of
  TrainManager.train_and_validate (after imports, vocabulary and model build). It
  includes JoeyNMT's batch preparation (its DataLoader numericalises and pads every
  batch in the training process) and its logging every 100 updates (a log line and a few
  TensorBoard scalars).
* Model choice: the final model at the budget, with no validation during training.
  JoeyNMT validates by greedy-decoding the whole dev set, which would come out of the
  same budget, and keeping the best by dev score is a model selection that the other
  side should then get too; the last model after the same time is the simpler equal
  footing (translate.py should use the same rule for lstmkit). After training, outside
  every timing, the dev set's teacher-forced perplexity (per target token, EOS included)
  is reported as a sanity check.
* Counting: "target_tokens_trained" is JoeyNMT's own count (``batch.ntokens``): the
  non-pad target tokens the loss covers, each sentence's pieces plus its EOS, BOS not
  counted. "parameters" counts every distinct trainable tensor once (a tied weight once).
* Decoding: JoeyNMT's beam search (``beam_size``; with ``beam_alpha`` > 0 the GNMT
  length penalty ((5 + length) / 6) ** alpha divides the log-probability, with
  ``beam_alpha`` <= 0 there is none) on the final model, batches of
  ``decode_batch_size`` sentences in file order (sorted by length within a batch only),
  ``max_output_length`` decoder steps at most, EOS included (a value < 0 lets JoeyNMT
  use 1.5 x the batch's longest source). decode_seconds is the whole call of
  joeynmt.prediction.predict on the test set (batching, search, turning ids back into
  pieces).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import venvs
from venvs import TORCH_PIN

JOEYNMT_VERSION = "2.3.0"
JOEYNMT_CHECK = ("import importlib_metadata, joeynmt; "
                 f"assert joeynmt.__version__ == '{JOEYNMT_VERSION}'")
# importlib_metadata: joeynmt.helpers imports it but joeynmt does not declare it.
PACKAGES = [f"joeynmt=={JOEYNMT_VERSION}", "importlib_metadata"]
SCRIPT = Path(__file__).resolve()
SRC, TRG = "src", "trg"  # JoeyNMT's language codes are the files' suffixes
LOGGING_FREQ = 100  # updates between JoeyNMT's training log lines
NO_VALIDATION = 1_000_000_000  # validation_freq: never reached, a multiple of LOGGING_FREQ
DEFAULT_CLIP = 1.0
DEFAULT_DECODE_BATCH = 64
# str.splitlines, which JoeyNMT reads files with, breaks lines at these as well as "\n".
LINE_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


# --------------------------------------------------------------------------- venv


def ensure_venv(venv_dir: Path, log_path: Path) -> Path:
    """JoeyNMT's python, after creating its venv (once; later calls reuse it): torch 2.13.0
    first (pip finds this machine's CPU wheel), then joeynmt with torch held by a
    constraints file so pip cannot swap it. pip's output goes to ``log_path``. Raises
    RuntimeError with the reason when an install fails."""
    python = venvs.venv_python(venv_dir)
    if venvs.ready(python, JOEYNMT_CHECK):
        return python
    print(f"installing joeynmt {JOEYNMT_VERSION} with {TORCH_PIN} in {venv_dir} (log "
          f"{log_path}) ...", flush=True)
    with venvs.pip_in(venv_dir, log_path) as pip:
        pip("install", "--quiet", TORCH_PIN)
        pip("install", "--quiet", "-c", str(pip.constraints), *PACKAGES)
    if not venvs.ready(python, JOEYNMT_CHECK):
        raise RuntimeError(f"installed, but joeynmt {JOEYNMT_VERSION} / {TORCH_PIN} do not "
                           f"import in {venv_dir}; see {log_path}")
    return python


def run(python: Path, spec_path: Path, out_path: Path, log_path: Path) -> dict[str, Any]:
    """Run this file under JoeyNMT's ``python`` on ``spec_path``; its output (JoeyNMT's log)
    is appended to ``log_path``. Returns the result it wrote to ``out_path``."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("PYTHONPATH", "PYTHONHOME")}  # nothing of lstmkit's venv
    with open(log_path, "a") as log:
        log.write(f"\n$ {python} {SCRIPT.name} --spec {spec_path} --out {out_path}\n")
        log.flush()
        done = subprocess.run([str(python), str(SCRIPT), "--spec", str(spec_path),
                               "--out", str(out_path)], stdout=log, stderr=subprocess.STDOUT,
                              env=env)
    if done.returncode:
        raise RuntimeError(f"the JoeyNMT run failed (exit {done.returncode}); the last "
                           f"lines of {log_path}:\n{venvs.tail(log_path)}")
    return json.loads(out_path.read_text())


# --------------------------------------------------------------------------- data


def _read_lines(path: Path) -> list[str]:
    """The lines of a file split at newlines alone (text mode would also split at a lone
    carriage return), each without a CRLF's carriage return."""
    lines = path.read_bytes().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start one
    return [line.removesuffix("\r") for line in lines]


def _clean(line: str) -> str:
    """One line as JoeyNMT can read it: no stray line-break characters, single spaces."""
    for char in LINE_BREAKS:
        line = line.replace(char, "\ufffd")
    return " ".join(piece for piece in line.split(" ") if piece)


def prepare_data(data_dir: Path, dest: Path) -> tuple[list[int], int, list[str]]:
    """Copy the corpus into ``dest`` in a form JoeyNMT reads line for line. Returns the
    indices of the test lines to decode, the number of test lines and notes."""
    notes: list[str] = []
    dest.mkdir(parents=True, exist_ok=True)
    odd = 0  # lines holding line breaks other than "\n"

    def read(name: str) -> list[str]:
        nonlocal odd
        lines = _read_lines(data_dir / name)
        odd += sum(any(char in line for char in LINE_BREAKS) for line in lines)
        return [_clean(line) for line in lines]

    for split in ("train", "dev"):
        src, trg = read(f"{split}.{SRC}"), read(f"{split}.{TRG}")
        if len(src) != len(trg):
            raise ValueError(f"{split}: {len(src)} source lines but {len(trg)} target lines")
        kept = [(s, t) for s, t in zip(src, trg) if s and t]
        if len(kept) < len(src):
            notes.append(f"{split}: {len(src) - len(kept)} pairs with an empty side dropped "
                         "(JoeyNMT cannot read them)")
        (dest / f"{split}.{SRC}").write_text("".join(s + "\n" for s, _ in kept), "utf-8")
        (dest / f"{split}.{TRG}").write_text("".join(t + "\n" for _, t in kept), "utf-8")
    test = read(f"test.{SRC}")
    decoded = [i for i, line in enumerate(test) if line]
    if len(decoded) < len(test):
        notes.append(f"test: {len(test) - len(decoded)} empty source lines not decoded "
                     "(their hypotheses are empty)")
    if odd:
        notes.append(f"{odd} lines held line-break characters other than '\\n' (JoeyNMT would "
                     "split them there); they were replaced by U+FFFD")
    # no test.trg: JoeyNMT then decodes the sources alone and computes no scores
    (dest / f"test.{SRC}").write_text("".join(test[i] + "\n" for i in decoded), "utf-8")
    return decoded, len(test), notes


def joeynmt_config(spec: dict[str, Any], data: Path, model_dir: Path,
                   tie: bool) -> dict[str, Any]:
    """The configuration JoeyNMT's YAML files would hold (its configs are not in the wheel)."""
    dropout = float(spec["dropout"])
    layers = int(spec["num_layers"])
    embeddings = {"embedding_dim": int(spec["embedding_dim"]), "scale": False,
                  "dropout": dropout}
    side = {"level": "word", "lowercase": False, "normalize": False, "max_length": -1,
            "min_length": -1, "voc_min_freq": 1, "tokenizer_cfg": {"pretokenizer": "none"}}
    return {
        "name": "lstmkit-translate-benchmark",
        "joeynmt_version": JOEYNMT_VERSION,
        "model_dir": str(model_dir),
        "use_cuda": False,
        "fp16": False,
        "num_workers": 0,
        "random_seed": int(spec["seed"]),
        "data": {
            "train": str(data / "train"), "dev": str(data / "dev"), "test": str(data / "test"),
            "dataset_type": "plain",
            "src": {"lang": SRC, **side},
            "trg": {"lang": TRG, **side},
        },
        "training": {
            "optimizer": "adam", "adam_betas": [0.9, 0.999],
            "learning_rate": float(spec["lr"]),
            "learning_rate_min": 0.0,  # JoeyNMT stops below this rate; never with 0
            # JoeyNMT 2.3.0 insists on a scheduler; ExponentialLR with gamma 1 keeps the rate
            # constant ("plateau" would pass verbose=, which torch 2.13 no longer takes)
            "scheduling": "exponential", "decrease_factor": 1.0,
            "weight_decay": 0.0,
            "clip_grad_norm": spec.get("clip_grad_norm", DEFAULT_CLIP),
            "loss": "crossentropy", "label_smoothing": 0.0, "normalization": "tokens",
            "batch_size": int(spec["batch_size"]), "batch_type": "token",
            "batch_multiplier": 1,
            "epochs": 1_000_000,  # the time budget ends training, not an epoch count
            "shuffle": True,
            "logging_freq": LOGGING_FREQ, "validation_freq": NO_VALIDATION,
            "early_stopping_metric": "ppl", "keep_best_ckpts": 1, "print_valid_sents": [],
        },
        "testing": {
            "beam_size": int(spec["beam_size"]), "beam_alpha": float(spec["beam_alpha"]),
            "max_output_length": int(spec["max_output_length"]), "min_output_length": 1,
            "batch_size": int(spec.get("decode_batch_size", DEFAULT_DECODE_BATCH)),
            "batch_type": "sentence", "n_best": 1, "eval_metrics": [],
            "return_prob": "none", "generate_unk": True,
        },
        "model": {
            "initializer": "xavier_uniform", "embed_initializer": "xavier_uniform",
            "bias_initializer": "zeros", "init_rnn_orthogonal": False,
            "lstm_forget_gate": 1.0,
            "tied_embeddings": False, "tied_softmax": tie,
            "encoder": {
                "type": "recurrent", "rnn_type": "lstm", "bidirectional": True,
                "embeddings": dict(embeddings),
                "hidden_size": int(spec.get("encoder_hidden_size", spec["hidden_size"])),
                "num_layers": layers, "dropout": dropout,
            },
            "decoder": {
                "type": "recurrent", "rnn_type": "lstm", "embeddings": dict(embeddings),
                "hidden_size": int(spec["hidden_size"]), "num_layers": layers,
                "dropout": dropout, "hidden_dropout": dropout,
                "attention": spec["attention"], "input_feeding": True,
                "init_hidden": "bridge",
            },
        },
    }


# --------------------------------------------------------------------------- training


def train_and_decode(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(int(spec["threads"]))

    from joeynmt.config import parse_global_args, set_validation_args
    from joeynmt.helpers import set_seed
    from joeynmt.prediction import predict, prepare
    from joeynmt.training import TrainManager

    if spec["attention"] not in ("bahdanau", "luong"):
        raise ValueError(f"attention must be 'bahdanau' or 'luong', got {spec['attention']!r}")
    tie = spec.get("tie_target_embeddings")
    if tie is None:
        tie = int(spec["embedding_dim"]) == int(spec["hidden_size"])
    if tie and int(spec["embedding_dim"]) != int(spec["hidden_size"]):
        raise ValueError("JoeyNMT ties target embeddings to the output layer only when "
                         "embedding_dim == hidden_size")

    work = Path(spec["work_dir"]).absolute()
    data, model_dir = work / "joeynmt-data", work / "joeynmt-model"
    decoded, n_test, notes = prepare_data(Path(spec["data_dir"]), data)
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.mkdir(parents=True)
    cfg = joeynmt_config(spec, data, model_dir, bool(tie))
    config_record = json.loads(json.dumps(cfg))  # parse_global_args rewrites parts of cfg

    args = parse_global_args(cfg, rank=0, mode="train")
    set_seed(args.seed)  # prepare() seeds only after it has built (initialised) the model
    model, train_data, dev_data, test_data = prepare(args, rank=0, mode="train")
    trainer = TrainManager(model=model, model_dir=args.model_dir, device=args.device,
                           n_gpu=args.n_gpu, rank=0, num_workers=args.num_workers,
                           autocast=args.autocast, seed=args.seed, train_args=args.train,
                           dev_args=set_validation_args(args.test))

    budget_s = float(spec["budget_s"])
    clock = {"start": 0.0, "last_update": 0.0}

    def after_update(*_: Any) -> None:
        # JoeyNMT's loop checks this flag after every update and then ends training as at
        # its step limit: the update just made counts, the model is saved, nothing is lost.
        clock["last_update"] = time.perf_counter()
        if clock["last_update"] - clock["start"] >= budget_s:
            trainer.stats.is_max_update = True

    trainer.optimizer.register_step_post_hook(after_update)
    clock["start"] = time.perf_counter()
    trainer.train_and_validate(train_data=train_data, valid_data=dev_data)
    if not trainer.stats.is_max_update:
        notes.append("training ended before the budget (JoeyNMT stopped on its own)")
    train_seconds = clock["last_update"] - clock["start"]

    test_started = time.perf_counter()
    prediction = predict(model=model, data=test_data, device=args.device, n_gpu=args.n_gpu,
                         compute_loss=False, num_workers=0, args=args.test,
                         autocast=args.autocast)
    decode_seconds = time.perf_counter() - test_started
    assert prediction is not None
    hypotheses = [""] * n_test
    for index, hypothesis in zip(decoded, prediction[2], strict=True):
        hypotheses[index] = hypothesis

    scored = predict(model=model, data=dev_data, device=args.device, n_gpu=args.n_gpu,
                     compute_loss=True, normalization="tokens", num_workers=0,
                     args=set_validation_args(args.test)._replace(return_prob="ref"),
                     autocast=args.autocast)
    assert scored is not None
    dev_perplexity = float(scored[0]["ppl"])

    tokens = int(trainer.stats.total_tokens)
    notes.append(f"final model after {budget_s:g} s of training, no validation during "
                 "training; target tokens counted as JoeyNMT does (pieces + EOS, no BOS)")
    return {
        "train_seconds": train_seconds,
        "updates": int(trainer.stats.steps),
        "epochs": int(trainer.stats.epochs),
        "target_tokens_trained": tokens,
        "target_tokens_per_s": tokens / train_seconds if train_seconds > 0 else math.nan,
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "src_vocab_size": len(model.src_vocab),
        "trg_vocab_size": len(model.trg_vocab),
        "tied_target_embeddings": bool(tie),
        "dev_perplexity": dev_perplexity,
        "test_hypotheses": hypotheses,
        "decode_seconds": decode_seconds,
        "sentences_per_s": len(decoded) / decode_seconds if decode_seconds > 0 else math.nan,
        "joeynmt_version": _joeynmt_version(),
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "notes": notes,
        "config": config_record,
    }


def _joeynmt_version() -> str:
    from importlib.metadata import version

    return version("joeynmt")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")  # JoeyNMT's decoding progress bars
    spec = json.loads(args.spec.read_text())
    result = train_and_decode(spec)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
