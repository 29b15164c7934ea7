"""Bad input across the command groups: a message naming the option, exit status 2, no
traceback, and nothing written or changed."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from lstmkit.cli import main
from lstmkit.errors import LstmkitError
from lstmkit.io.rundir import open_run

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))
from tasks import make_task, write_data  # noqa: E402

AIRLINE = Path(__file__).resolve().parent.parent / "src/lstmkit/datasets/airline_passengers.csv"
FORECAST = ["--data", AIRLINE, "--target", "Passengers", "--horizon", "6", "--window", "12",
            "--steps", "5", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished forecast run and a classify data table, shared by the cases."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["forecast", "train", *map(str, FORECAST), "--run-dir", str(root / "air")]) == 0
    write_data("classify", root / "texts")
    write_data("lm", root / "text")
    write_data("translate", root / "pairs")
    for task, data, run in (("lm", "text", "lm"), ("classify", "texts", "clf"),
                            ("translate", "pairs", "mt")):
        model, source, options = make_task(task, root / data)
        model.fit(source, root / run, **options)
    write_data("finance", root / "prices")
    prices = pd.read_csv(root / "prices" / "prices.csv")
    prices.assign(close=prices.close.where(prices.index != 5, 0.0)).to_csv(
        root / "prices" / "zero.csv", index=False)
    prices.iloc[[1, 0, *range(2, len(prices))]].to_csv(root / "prices" / "unsorted.csv",
                                                       index=False)
    (root / "plain.txt").write_text("a file, not a folder")
    (root / "three.en").write_text("one\ntwo\nthree\n")
    (root / "two.de").write_text("eins\nzwei\n")
    return root


PRICES = ["finance", "backtest", "--data", "{root}/prices/prices.csv", "--window", "10",
          "--quiet", "--run-dir", "{root}/new"]

CASES = {
    "run dir under a file": (["forecast", "train", *FORECAST, "--run-dir", "{root}/plain.txt/x"],
                             "which is a file, not a folder; choose another --run-dir"),
    "run dir is a file": (["classify", "train", "--data", "{root}/texts/data.csv", "--run-dir",
                           "{root}/plain.txt"], "is a file, not a directory"),
    "finished run without --overwrite": (["forecast", "train", *FORECAST, "--run-dir",
                                          "{root}/air"], "pass --overwrite"),
    "resume of a finished run": (["forecast", "train", *FORECAST, "--run-dir", "{root}/air",
                                  "--resume"], "nothing to resume"),
    "holdout beyond the horizon": (["forecast", "train", *FORECAST, "--holdout", "7",
                                    "--run-dir", "{root}/new"], "--holdout must be"),
    "negative holdout": (["forecast", "evaluate", "--run-dir", "{root}/air", "--data", AIRLINE,
                          "--holdout", "-3"], "--holdout must be"),
    "negative backtest step": (["forecast", "backtest", *FORECAST, "--step", "-1"],
                               "--step must be"),
    "plot into the run": (["forecast", "plot", "--run-dir", "{root}/air", "--data", AIRLINE,
                           "--output-dir", "{root}/air/plots"], "points into the model's run"),
    "output is a folder": (["forecast", "predict", "--run-dir", "{root}/air", "--data", AIRLINE,
                            "--output", "{root}/texts"], "is a folder; name a file"),
    "no such run": (["lm", "generate", "--run-dir", "{root}/nowhere"], "does not exist"),
    "run of another task": (["classify", "predict", "--run-dir", "{root}/air", "--text", "hi"],
                            "'forecast' run directory, not a 'classify' one"),
    "evaluate batch size 0": (["lm", "evaluate", "--run-dir", "{root}/lm", "--batch-size", "0"],
                              "--batch-size must be a whole number of at least 1"),
    "generate from an empty prompt": (["lm", "generate", "--run-dir", "{root}/lm", "--prompt",
                                       ""], "the prompt is empty"),
    "evaluation written over the run": (["classify", "evaluate", "--run-dir", "{root}/clf",
                                         "--data", "{root}/texts/data.csv", "--output-dir",
                                         "{root}/clf", "--overwrite"], "points into the model's"),
    "cells drawn into the run": (["lm", "inspect", "--run-dir", "{root}/lm", "--output-dir",
                                  "{root}/lm/cells"], "points into the model's run directory"),
    "plot over a file": (["forecast", "plot", "--run-dir", "{root}/air", "--data", AIRLINE,
                          "--output-dir", "{root}/plain.txt"], "is a file, not a directory"),
    "plot over an earlier plot": (["forecast", "plot", "--run-dir", "{root}/air", "--data",
                                   AIRLINE, "--output-dir", "{root}/texts"],
                                  "pass --overwrite to replace its contents"),
    "translation files misaligned": (["translate", "train", "--data", "{root}/three.en",
                                      "{root}/two.de", "--run-dir", "{root}/new"],
                                     "not line-aligned: "),
    "n-best beyond the beam": (["translate", "translate", "--run-dir", "{root}/mt", "--text",
                                "one", "--beam-size", "2", "--n-best", "3"],
                               "--n-best must lie in 1..--beam-size (2)"),
    "beam size 0": (["translate", "translate", "--run-dir", "{root}/mt", "--text", "one",
                     "--beam-size", "0"], "--beam-size must be a whole number"),
    "evaluate limit 0": (["translate", "evaluate", "--run-dir", "{root}/mt", "--limit", "0"],
                         "--limit must be a whole number"),
    "alignment drawn into the run": (["translate", "inspect", "--run-dir", "{root}/mt", "--text",
                                      "one", "--output-dir", "{root}/mt/look"],
                                     "points into the model's run directory"),
    "translations written over the run": (["translate", "evaluate", "--run-dir", "{root}/mt",
                                           "--output", "{root}/mt/config.json", "--overwrite"],
                                          "points into the model's run directory"),
    "translations written into the run": (["translate", "translate", "--run-dir", "{root}/mt",
                                            "--text", "one", "--output", "{root}/mt/out.txt"],
                                           "points into the model's run directory"),
    "negative trading costs": ([*PRICES, "--cost-bps", "-1"], "--cost-bps must be 0 or more"),
    "a price of zero": ([*PRICES[:3], "{root}/prices/zero.csv", *PRICES[4:]],
                        "are empty or not positive (0 at line 7 of zero.csv)"),
    "dates out of order": ([*PRICES[:3], "{root}/prices/unsorted.csv", *PRICES[4:]],
                           "dates go backwards"),
    "horizon beyond the data": ([*PRICES, "--horizon", "500"], "no test days"),
    "test starts too early": ([*PRICES, "--test-start", "2015-02-01"],
                              "too little history for the first training window"),
    "unknown arch data": ([*PRICES[:3], "arch:dax", *PRICES[4:]], "unknown data set"),
    "long-short beyond the assets": ([*PRICES, "--strategy", "long_short", "--top-k", "2"],
                                     "needs at least 4 assets"),
    "threads 0": (["forecast", "predict", "--run-dir", "{root}/air", "--data", AIRLINE,
                   "--threads", "0"], "--threads must be at least 1"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_is_a_clear_error(case, runs, capsys):
    argv, message = CASES[case]
    before = sorted(str(p) for p in runs.rglob("*"))
    assert main([str(a).format(root=runs) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmkit: error:") and "Traceback" not in err
    assert message in err, err
    assert sorted(str(p) for p in runs.rglob("*")) == before


def test_a_full_disk_is_reported_and_the_run_removed(tmp_path):
    with pytest.raises(LstmkitError, match="cannot write the run to .*No space left"):
        with open_run(tmp_path / "run", "forecast"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == []
