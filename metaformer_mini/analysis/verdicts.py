"""Verdicts with uncertainty: does the CIFAR-10 suite agree with each claim of the paper it tests?

A claim compares two rows of the suite (``a`` against ``b``) and says which way the paper found
the difference: ``"higher"`` (a beats b), ``"lower"`` (a loses to b) or ``"similar"`` (within
``tolerance`` points of each other). Our difference of mean top-1 accuracies comes with a 95%
confidence interval over training seeds:

.. math::
    \\Delta = \\bar a - \\bar b, \\qquad
    \\Delta \\pm t_{0.975,\\,\\nu}\\; s \\sqrt{1/n_a + 1/n_b}

where :math:`s` is the seed-to-seed standard deviation pooled over every row that trained two or
more seeds (all rows share one recipe, so they share one noise level, and pooling gives an
estimate with :math:`\\nu = \\sum_r (n_r - 1)` degrees of freedom instead of two or three).
A run that diverged counts as chance, 10%: a network that cannot be trained is the collapse
the paper reports for those rows.

The verdict reads the interval: for "higher", *agrees* when it lies above ``margin`` (0 unless
the claim is about the size of the difference), *disagrees* when it lies below, *within noise*
when it contains ``margin`` (mirrored for "lower"); for "similar", *agrees* when it lies inside
[-tolerance, +tolerance], *disagrees* when it lies wholly outside, *within noise* otherwise. A
claim whose rows have no results yet is *not run*.

The paper says that removing the norms, the channel MLP or the residual connections makes
accuracy *collapse*, not merely fall: those claims have a margin, :data:`COLLAPSE` points. In
Table 5 every other change moves PoolFormer-S12 by at most 3.8 points and those three by 31 to 77;
a loss of more than 10 points is of the second kind.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from scipy import stats

from .._names import check_range
from ..paper import TABLE5

CHANCE = 10.0  # CIFAR-10 top-1 of a run that diverged
COLLAPSE = 10.0  # points of top-1 a row must lose for "collapses" (see the module docstring)


@dataclass(frozen=True)
class Claim:
    """A claim of the paper as a comparison of two suite rows."""

    text: str
    a: str
    b: str
    expect: str  # "higher", "lower" or "similar"
    tolerance: float = 1.0  # points; used by "similar"
    margin: float = 0.0  # points; "higher"/"lower" means by more than this

    def __post_init__(self) -> None:
        if self.expect not in ("higher", "lower", "similar"):
            raise ValueError(f"Claim.expect must be 'higher', 'lower' or 'similar', got {self.expect!r}")
        check_range("Claim.tolerance", self.tolerance, "(0, inf)")  # points of top-1
        check_range("Claim.margin", self.margin, "[0, inf)")
        if self.margin and self.expect == "similar":
            raise ValueError("Claim.margin is for 'higher' and 'lower' claims; 'similar' uses tolerance")

    def paper_delta(self) -> Optional[float]:
        """Return the paper's ImageNet-1K difference a - b (Table 5), None where it has no such rows."""
        if self.a in TABLE5 and self.b in TABLE5:
            return TABLE5[self.a].value - TABLE5[self.b].value
        return None


CLAIMS: tuple[Claim, ...] = (
    Claim("pooling beats identity mapping", "pooling", "identity", "higher"),
    Claim("pooling is within reach of attention", "pooling", "attention", "similar"),
    Claim("pooling is within reach of a spatial MLP", "pooling", "spatial_mlp", "similar"),
    Claim("pooling beats a frozen random mixing matrix", "pooling", "random", "higher"),
    Claim("a depthwise convolution beats pooling", "sepconv", "pooling", "higher"),
    Claim("attention in the last two stages beats all-pooling", "hybrid_attention", "pooling", "higher"),
    Claim("a spatial MLP in the last two stages beats all-pooling", "hybrid_spatial_mlp", "pooling",
          "higher"),
    Claim("pool size 5 performs as size 3", "pool5", "pooling", "similar"),
    Claim("pool size 7 performs as size 3", "pool7", "pooling", "similar"),
    Claim("LayerNorm loses to GroupNorm(1)", "norm_layer", "pooling", "lower"),
    Claim("BatchNorm loses to GroupNorm(1)", "norm_batch", "pooling", "lower"),
    Claim(f"no normalization collapses (loses > {COLLAPSE:g} points)", "norm_none", "pooling", "lower",
          margin=COLLAPSE),
    Claim("ReLU loses to GELU", "act_relu", "pooling", "lower"),
    Claim("SiLU performs as GELU", "act_silu", "pooling", "similar"),
    Claim(f"no channel MLP collapses (loses > {COLLAPSE:g} points)", "no_channel_mlp", "pooling", "lower",
          margin=COLLAPSE),
    Claim(f"no residual connection collapses (loses > {COLLAPSE:g} points)", "no_residual", "pooling", "lower",
          margin=COLLAPSE),
)


def seed_scores(result: dict[str, Any]) -> list[float]:
    """Return a row's top-1 per trained seed, a diverged run counting as chance (10%)."""
    return [CHANCE if run["top1"] is None else run["top1"] for run in result["runs"]]


def pooled_seed_sd(results: Sequence[dict[str, Any]]) -> tuple[Optional[float], int]:
    """Return (s, degrees of freedom): the seed-to-seed standard deviation pooled over rows.

    Rows with one seed carry no information about the noise; rows with a diverged run are left
    out, since a collapse is not the seed noise of a trained network.
    """
    squares, dof = 0.0, 0
    for result in results:
        scores = [run["top1"] for run in result["runs"]]
        if len(scores) < 2 or None in scores:
            continue
        mean = statistics.fmean(scores)
        squares += sum((x - mean) ** 2 for x in scores)
        dof += len(scores) - 1
    return (math.sqrt(squares / dof), dof) if dof else (None, 0)


def verdict(claim: Claim, results: Sequence[dict[str, Any]], level: float = 0.95) -> dict[str, Any]:
    """Return our difference a - b for ``claim`` with its confidence interval and the verdict."""
    check_range("level", level, "(0, 1)")
    by_name = {r["name"]: r for r in results}
    row = {"claim": claim.text, "a": claim.a, "b": claim.b, "expect": claim.expect,
           "margin": claim.margin,
           "paper_delta": claim.paper_delta(), "delta": None, "low": None, "high": None,
           "n_a": 0, "n_b": 0, "verdict": "not run"}
    if claim.a not in by_name or claim.b not in by_name:
        return row
    a, b = seed_scores(by_name[claim.a]), seed_scores(by_name[claim.b])
    s, dof = pooled_seed_sd(results)
    delta = statistics.fmean(a) - statistics.fmean(b)
    row.update(delta=delta, n_a=len(a), n_b=len(b))
    if s is None:
        row["verdict"] = "within noise"  # no estimate of the noise yet: no claim either way
        return row
    half = stats.t.ppf(0.5 + level / 2, dof) * s * math.sqrt(1 / len(a) + 1 / len(b))
    low, high = delta - half, delta + half
    row.update(low=low, high=high, seed_sd=s, dof=dof)
    if claim.expect == "similar":
        inside = -claim.tolerance <= low and high <= claim.tolerance
        outside = low > claim.tolerance or high < -claim.tolerance
        row["verdict"] = "agrees" if inside else "disagrees" if outside else "within noise"
    else:
        sign = 1 if claim.expect == "higher" else -1
        lo, hi = sorted((sign * low, sign * high))
        row["verdict"] = ("agrees" if lo > claim.margin else "disagrees" if hi < claim.margin
                          else "within noise")
    return row


def verdicts(results: Sequence[dict[str, Any]], claims: Sequence[Claim] = CLAIMS,
             level: float = 0.95) -> list[dict[str, Any]]:
    """Return :func:`verdict` for every claim, in order."""
    return [verdict(claim, results, level) for claim in claims]


def format_verdicts(rows: Sequence[dict[str, Any]]) -> str:
    """Return the verdicts as a Markdown table."""
    def num(value: Optional[float], fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = ["| claim (a vs b) | paper ImageNet a - b | ours CIFAR-10 a - b | 95% interval | seeds | verdict |",
             "|---|---:|---:|---|---|---|"]
    for r in rows:
        interval = "-" if r["low"] is None else f"[{r['low']:+.2f}, {r['high']:+.2f}]"
        lines.append(f"| {r['claim']} ({r['a']} vs {r['b']}) | {num(r['paper_delta'], '+.1f')} | "
                     f"{num(r['delta'], '+.2f')} | {interval} | {r['n_a']} vs {r['n_b']} | "
                     f"{r['verdict']} |")
    return "\n".join(lines)


def format_summary(results: Sequence[dict[str, Any]], baseline: str = "pooling") -> str:
    """Return what the suite shows so far, in a few Markdown paragraphs: the rows and the verdicts.

    ``book/teachers.md`` carries this text for group leaders (a test keeps it equal to the
    committed results); chapter 9 gives the intervals behind it.
    """
    by_name = {r["name"]: r for r in results}
    if baseline not in by_name:
        return "The suite has no results for its baseline row yet."
    base = by_name[baseline]
    epochs = base["config"]["epochs"]
    runs = sum(len(r["runs"]) for r in results)
    mixers = ", ".join(f"{r['name']} {statistics.fmean(seed_scores(r)):.2f}"
                       for r in results if r["group"] == "mixer")
    def count(n: int, word: str) -> str:
        return f"{n} {word}{'s' * (n != 1)}"
    lines = [f"At {epochs} epochs on CIFAR-10 ({count(len(results), 'row')}, {count(runs, 'run')} "
             f"so far), the {baseline} baseline reaches {statistics.fmean(seed_scores(base)):.2f}% "
             f"test top-1 over {count(len(base['runs']), 'seed')}; means of the mixer rows: {mixers}."]
    rows = verdicts(results)
    run = [r for r in rows if r["verdict"] != "not run"]
    headings = {"agrees": "Agree with the paper", "disagrees": "Disagree with the paper",
                "within noise": "Within the seed noise"}
    for kind, heading in headings.items():
        claims = [f"{r['claim']} ({r['delta']:+.2f} points)" for r in run if r["verdict"] == kind]
        if claims:
            lines.append(f"*{heading}:* {'; '.join(claims)}.")
    missing = len(rows) - len(run)
    lines.append(f"{missing} of the {len(rows)} claims are not run yet." if missing
                 else f"All {len(rows)} claims have results.")
    return "\n\n".join(lines)
