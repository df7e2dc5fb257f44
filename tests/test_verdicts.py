"""Tests for metaformer_mini/analysis/verdicts.py: intervals over seeds and the verdict rules."""
import math

import pytest
from scipy import stats

from metaformer_mini.analysis.verdicts import (CLAIMS, Claim, format_summary, format_verdicts,
                                               pooled_seed_sd, verdict)


def result(name, *scores):
    return {"name": name, "runs": [{"seed": i, "top1": s} for i, s in enumerate(scores)]}


def test_pooled_sd_uses_every_row_with_two_trained_seeds():
    rows = [result("x", 80.0, 82.0), result("y", 70.0, 71.0, 72.0), result("z", 60.0),
            result("d", 50.0, None)]
    s, dof = pooled_seed_sd(rows)
    assert dof == 3 and s == pytest.approx(math.sqrt((2 + 2) / 3))


def test_interval_and_verdicts_follow_the_claim():
    rows = [result("pooling", 85.0, 85.2, 84.8), result("identity", 84.0, 84.2, 83.8),
            result("pool5", 85.1, 84.9, 85.0)]
    s, dof = pooled_seed_sd(rows)
    row = verdict(Claim("pooling beats identity", "pooling", "identity", "higher"), rows)
    half = stats.t.ppf(0.975, dof) * s * math.sqrt(2 / 3)
    assert row["delta"] == pytest.approx(1.0) and row["low"] == pytest.approx(1.0 - half)
    assert row["verdict"] == "agrees" and row["paper_delta"] == pytest.approx(2.9)
    assert verdict(Claim("t", "identity", "pooling", "higher"), rows)["verdict"] == "disagrees"
    assert verdict(Claim("t", "identity", "pooling", "lower"), rows)["verdict"] == "agrees"
    assert verdict(Claim("t", "pool5", "pooling", "similar"), rows)["verdict"] == "agrees"
    assert verdict(Claim("t", "identity", "pooling", "similar", 0.3), rows)["verdict"] == "disagrees"
    assert verdict(Claim("t", "pool7", "pooling", "similar"), rows)["verdict"] == "not run"


def test_a_diverged_run_counts_as_chance_and_an_overlap_is_within_noise():
    rows = [result("pooling", 85.0, 84.0), result("no_residual", None, None),
            result("identity", 84.5, 85.5)]
    assert verdict(Claim("t", "no_residual", "pooling", "lower"), rows)["delta"] == pytest.approx(-74.5)
    assert verdict(Claim("t", "pooling", "identity", "higher"), rows)["verdict"] == "within noise"


def test_a_collapse_claim_needs_a_loss_beyond_its_margin():
    rows = [result("pooling", 85.0, 85.2, 84.8), result("no_residual", 79.0, 79.2, 78.8),
            result("norm_none", 40.0, 40.2, 39.8), result("no_channel_mlp", 74.0, 80.0)]
    collapse = {c.a: c for c in CLAIMS if c.margin}
    assert set(collapse) == {"norm_none", "no_channel_mlp", "no_residual"}
    # 6 points lower is lower, but not the collapse the paper reports
    assert verdict(Claim("t", "no_residual", "pooling", "lower"), rows)["verdict"] == "agrees"
    assert verdict(collapse["no_residual"], rows)["verdict"] == "disagrees"
    assert verdict(collapse["norm_none"], rows)["verdict"] == "agrees"
    assert verdict(collapse["no_channel_mlp"], rows)["verdict"] == "within noise"  # -8, interval past -10
    assert verdict(Claim("t", "pooling", "no_residual", "higher", margin=10.0), rows)["verdict"] == "disagrees"


def test_bad_claims_and_levels_are_refused():
    with pytest.raises(ValueError, match="expect must be"):
        Claim("t", "a", "b", "better")
    with pytest.raises(ValueError, match="Claim.tolerance must be positive, got 0"):
        Claim("t", "a", "b", "similar", 0)
    with pytest.raises(ValueError, match="Claim.margin must be 0 or more, got -1"):
        Claim("t", "a", "b", "lower", margin=-1)
    with pytest.raises(ValueError, match="margin is for 'higher' and 'lower' claims"):
        Claim("t", "a", "b", "similar", margin=2)
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 1.5"):
        verdict(CLAIMS[0], [], level=1.5)


def test_every_claim_names_declared_rows_and_formats():
    from metaformer_mini.experiments import list_rows
    assert {c.a for c in CLAIMS} | {c.b for c in CLAIMS} <= set(list_rows())
    table = format_verdicts([verdict(c, []) for c in CLAIMS])
    assert table.count("not run") == len(CLAIMS)


def test_summary_names_the_baseline_and_groups_the_verdicts():
    def row(name, group, *scores):
        return {**result(name, *scores), "group": group, "config": {"epochs": 15}}
    rows = [row("pooling", "mixer", 85.0, 85.2, 84.8), row("identity", "mixer", 84.0, 84.2, 83.8),
            row("random", "mixer", 85.1, 84.9), row("pool5", "pool_size", 85.3)]
    text = format_summary(rows)
    assert text.startswith("At 15 epochs on CIFAR-10 (4 rows, 9 runs so far), the pooling "
                           "baseline reaches 85.00% test top-1 over 3 seeds")
    assert "means of the mixer rows: pooling 85.00, identity 84.00, random 85.00." in text
    assert "*Agree with the paper:* pooling beats identity mapping (+1.00 points); pool size 5" in text
    assert "*Within the seed noise:* pooling beats a frozen random mixing matrix (+0.00 points)" in text
    assert "Disagree" not in text and text.endswith(f"{len(CLAIMS) - 3} of the {len(CLAIMS)} claims are not run yet.")
    assert format_summary(rows[1:]) == "The suite has no results for its baseline row yet."
    everything = rows + [row(name, "other", 85.0) for name in {c.a for c in CLAIMS} | {c.b for c in CLAIMS}
                         if name not in {r["name"] for r in rows}]
    assert format_summary(everything).endswith(f"All {len(CLAIMS)} claims have results.")
