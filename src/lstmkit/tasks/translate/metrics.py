"""Translation quality with sacreBLEU: corpus BLEU and chrF beside copying the source.

Scores are on detokenised text against one reference per sentence, with sacreBLEU's
defaults (BLEU: 13a tokenisation, exponential smoothing off for corpora; chrF: character
6-grams, beta 2); the signatures printed with them say exactly how they were computed.
"""

from __future__ import annotations

from collections.abc import Sequence

from lstmkit.tasks.lifecycle import Evaluation


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """{"BLEU": .., "chrF": ..} of ``hypotheses`` against ``references`` (0..100)."""
    return scored(hypotheses, references)[0]


def scored(hypotheses: Sequence[str], references: Sequence[str]
           ) -> tuple[dict[str, float], list[str]]:
    """The two scores and sacreBLEU's signatures of how they were computed (what a
    paper should quote)."""
    from sacrebleu.metrics import BLEU, CHRF

    scores, signatures = {}, []
    for name, metric in (("BLEU", BLEU()), ("chrF", CHRF())):
        scores[name] = metric.corpus_score(list(hypotheses), [list(references)]).score
        signatures.append(f"{name}: {metric.get_signature()}")
    return scores, signatures


def evaluation_of(name: str, sources: Sequence[str], references: Sequence[str],
                  hypotheses: Sequence[str], beam_size: int) -> Evaluation:
    """The model's BLEU and chrF beside the copy-the-source baseline's."""
    model, signatures = scored(hypotheses, references)
    return Evaluation(
        task="translation",
        data=f"{name}: {len(references)} sentences, beam {beam_size}",
        rows={"model": model, "copy": corpus_scores(sources, references)},
        labels={"model": "lstmkit LSTM + attention", "copy": "copy the source"},
        notes=["higher is better; sacreBLEU " + "; ".join(signatures)],
        details={"sentences": len(references)},
    )
