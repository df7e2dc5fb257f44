"""The declared results suite: the paper's mixer comparison and Table 5 ablations, re-run on CIFAR-10.

    python -m metaformer_mini.experiments list
    python -m metaformer_mini.experiments run [ROW ...] --data-dir ../shared/data/cifar10
    python -m metaformer_mini.experiments table

Every row trains the CIFAR-sized MetaFormer of the registry (``cifar_*``: 3x3 stride-2 stem, 16x16
tokens, dims 32-64-128-256, depths 1-1-3-1, GroupNorm, GELU) with one recipe, the engine's
``cifar10-suite`` config (whitened stem, Muon, warm-up and cosine, label smoothing, flip and shift
test-time augmentation), for the same fixed number of epochs, and differs from the baseline row
(``pooling``) in one choice, as the rows of the paper's Table 5 differ from PoolFormer-S12.
Wall time is recorded beside each result and never used to stop a run, so a row's accuracy does
not depend on the machine or its load.
Beside each row stands the paper's ImageNet-1K top-1 (Yu et al., CVPR 2022, arXiv 2111.11418v3)
where the paper has that row, None where it has not.

``run`` writes one JSON per row to ``results/cifar10-suite/<row>.json`` (its config, the test top-1
of each seed and their mean, parameters, MACs, CPU throughput, wall time, the exact command, git
commit, date, device, versions, machine load) after each seed, and skips seeds already recorded
with the same config, so an interrupted suite resumes where it stopped. A seed trains in its own
folder under ``--work-dir`` (default ``runs/suite``), which keeps the engine's ``last.pt`` after
every epoch: a seed that was stopped resumes from its last finished epoch, with the same result
as an uninterrupted run, and the folder is removed once the seed is recorded. Runs go seed by
seed: the first seed of every requested row, then the second, so a suite stopped early still
covers every row. The first seed of the rows in ``CHECKPOINT_ROWS`` also leaves its weights
(int8, no optimizer) in ``results/checkpoints/``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ._io import plain, write_json
from .book import cifar10_dir, repo_root, results_dir
from .checkpoint import (SUITE_WEIGHTS_FORMAT, dequantize_weights, quantize_weights,  # noqa: F401
                         read_checkpoint, read_suite_checkpoint, save_suite_checkpoint)
from .configs import TrainConfig, config_from_dict
from .registry import get_config
from .suite import (BASELINE, CHECKPOINT_ROWS, MIXER_SEEDS, PAPER, RECIPE, ROWS, SUITE,  # noqa: F401
                    PaperResult, Row, get_row, list_rows)
from .train import TrainingDiverged, resolve_amp

TrainFn = Callable[..., dict[str, Any]]  # metaformer_mini.train.train, or a test's stand-in

def default_results_dir() -> Path:
    """Return ``results/cifar10-suite`` (:func:`book.results_dir`), where the committed suite lives."""
    return results_dir() / RECIPE


def default_checkpoint_dir() -> Path:
    """Return ``results/checkpoints`` (:func:`book.results_dir`), where the suite's small trained models live."""
    return results_dir() / "checkpoints"


# --- provenance ------------------------------------------------------------------------------

def _git(*args: str) -> Optional[str]:
    root = repo_root() or Path.cwd()
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance() -> dict[str, Any]:
    """Return where and with what a run happens: git commit, date, machine, versions, load."""
    status = _git("status", "--porcelain", "--", "metaformer_mini")
    return {"git_commit": _git("rev-parse", "HEAD"),
            "git_dirty": None if status is None else bool(status),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "host_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_avg": list(os.getloadavg()),
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__}


def train_command(config: TrainConfig, row: Row, data_dir: Optional[str]) -> str:
    """Return the ``metaformer_mini.train`` command line that repeats one seed of ``row``."""
    sets = [f"model={config.model}", f"seed={config.seed}"]
    sets += [f"model.{k}={v if isinstance(v, str) else repr(v)}" for k, v in row.overrides.items()]
    words = ["python", "-m", "metaformer_mini.train", "--config", RECIPE, "--set", *sets]
    if data_dir is not None:
        words += ["--data-dir", str(data_dir)]
    return shlex.join(words)


# --- results files -----------------------------------------------------------------------------

def row_config(row: Row) -> dict[str, Any]:
    """Return what identifies a row's results: recipe, model, overrides, epochs.

    The seeds are not part of it: declaring more seeds later keeps the ones already trained.
    """
    return plain({"recipe": RECIPE, "model": row.model, "overrides": row.overrides,
                   "epochs": row.train_config(0).epochs})


def result_path(results_dir: str | os.PathLike, name: str) -> Path:
    """Return the JSON file that holds row ``name``'s results."""
    return Path(results_dir) / f"{name}.json"


def finished_seeds(result: Optional[dict[str, Any]], row: Row,
                   results_dir: str | os.PathLike) -> set[int]:
    """Return the seeds of ``row`` that ``result`` (read from ``results_dir``) holds with the same config.

    A recorded train config is read as a checkpoint's is: a field added to TrainConfig since the
    run takes its default, which keeps the old behaviour. A seed that should have left a
    checkpoint counts only while that file exists.
    """
    if not result or result.get("config") != row_config(row):
        return set()
    done = set()
    for run in result.get("runs", []):
        recorded = plain(dataclasses.asdict(config_from_dict(run.get("train_config", {}))))
        if recorded != plain(dataclasses.asdict(row.train_config(run["seed"]))):
            continue
        checkpoint = run.get("checkpoint")
        if checkpoint is not None and not (Path(results_dir) / checkpoint).is_file():
            continue
        done.add(run["seed"])
    return done


def _read(path: Path) -> Optional[dict[str, Any]]:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it to re-run its row") from None
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON atomically."""
    write_json(path, data)


def model_costs(row: Row, throughput_batch: int = 64) -> dict[str, Any]:
    """Return params, MACs (fvcore, one 32x32 image) and CPU inference images/s of ``row``'s model."""
    from .analysis.compare import build_spec, measure_throughput
    from .flops import count_params_and_macs

    model = build_spec(row.spec())
    size = (model.config.in_chans, model.config.img_size, model.config.img_size)
    params, macs = count_params_and_macs(model, size)
    return {"params": params, "macs": macs, "throughput_batch": throughput_batch,
            "throughput_cpu": measure_throughput(model, size, throughput_batch, "cpu", iters=5)}


def load_suite_model(name: str, checkpoint_dir: Optional[str | os.PathLike] = None) -> nn.Module:
    """Return the trained CIFAR-10 model of suite row ``name`` (in ``CHECKPOINT_ROWS``), fp32, eval mode."""
    if name not in CHECKPOINT_ROWS:
        raise ValueError(f"no trained checkpoint for {name!r}; the suite keeps: "
                         f"{', '.join(CHECKPOINT_ROWS)}")
    model, _ = read_suite_checkpoint(Path(checkpoint_dir or default_checkpoint_dir()) / f"{name}.pt")
    return model


def checkpoint_accuracy(path: str | os.PathLike, data_dir: Any) -> float:
    """Return the CIFAR-10 test top-1 of a suite checkpoint, evaluated as its training run evaluated."""
    from .data import test_batches
    from .evaluate import evaluate

    model, state = read_suite_checkpoint(path)
    config = config_from_dict(state["config"])
    device = torch.device("cpu")
    return evaluate(model, test_batches(config, data_dir, device), device,
                    resolve_amp(config, device), config.tta_flip, tta_shift=config.tta_shift)["top1"]


# --- running the suite -----------------------------------------------------------------------------

@dataclass
class SeedRun:
    """One trained seed of a row: an entry of ``runs`` in the row's JSON file, with the same keys."""

    seed: int
    top1: Optional[float]                      # None: the run diverged
    diverged: Optional[str] = None             # the divergence message
    top5: Optional[float] = None
    epochs: Optional[float] = None
    steps: Optional[int] = None
    train_seconds: Optional[float] = None
    wall_seconds: Optional[float] = None
    suite_wall_seconds: Optional[float] = None  # training, saving and checking the checkpoint
    resumed_from_epoch: Optional[int] = None   # written only when the seed resumed after this epoch
    train_images_per_s: Optional[float] = None
    device: Optional[str] = None
    amp: Optional[str] = None
    train_config: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    train_command: str = ""
    load_avg_start: list[float] = field(default_factory=list)
    load_avg_end: list[float] = field(default_factory=list)
    date: Optional[str] = None
    git_commit: Optional[str] = None
    git_dirty: Optional[bool] = None
    checkpoint: Optional[str] = None           # relative to the results folder
    checkpoint_bytes: Optional[int] = None     # written only when the seed left a checkpoint
    checkpoint_top1: Optional[float] = None    # written only when that checkpoint was evaluated

    def to_dict(self) -> dict[str, Any]:
        """Return the run as its JSON entry (the checkpoint-only and resume keys only when set)."""
        data = dataclasses.asdict(self)
        return {k: v for k, v in data.items()
                if v is not None
                or k not in ("checkpoint_bytes", "checkpoint_top1", "resumed_from_epoch")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeedRun:
        """Return the run an entry of ``runs`` holds (keys this class does not know are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class _Runner:
    """What every run of one :func:`run_suite` call shares."""

    data_dir: Any
    data_arg: Optional[str]  # the --data-dir the train command lines repeat
    results_dir: Path
    checkpoint_dir: Path
    command: str
    train_fn: TrainFn
    check_checkpoints: bool
    work_dir: Path  # one folder per seed in training, kept until the seed is recorded


def run_suite(names: Sequence[str] = (), data_dir: Optional[str | os.PathLike] = None,
              results_dir: Optional[str | os.PathLike] = None,
              checkpoint_dir: Optional[str | os.PathLike] = None, command: str = "",
              train_fn: Optional[TrainFn] = None, check_checkpoints: bool = True,
              progress: bool = True, work_dir: str | os.PathLike = "runs/suite") -> list[dict[str, Any]]:
    """Train the rows ``names`` (all when empty), seed by seed; return their result dicts.

    The first seed of every row runs before any row's second seed. Seeds whose results already
    exist with the same config are skipped; a seed stopped in training resumes from its folder in
    ``work_dir``. ``train_fn`` replaces
    :func:`metaformer_mini.train.train` (same signature; tests pass a fake one).
    ``check_checkpoints`` evaluates each saved int8 checkpoint on the test set.
    """
    rows = [get_row(n) for n in names] if names else list(SUITE)
    if train_fn is None:
        from .train import train as train_fn
    runner = _Runner(data_dir if data_dir is not None else cifar10_dir(),
                     None if data_dir is None else str(data_dir),
                     Path(results_dir) if results_dir is not None else default_results_dir(),
                     Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir(),
                     command, train_fn, check_checkpoints, Path(work_dir))
    todo = []
    for row in rows:
        done = finished_seeds(_read(result_path(runner.results_dir, row.name)), row, runner.results_dir)
        todo += [(rank, row, seed) for rank, seed in enumerate(row.seeds) if seed not in done]
    todo = [(row, seed) for _, row, seed in sorted(todo, key=lambda item: item[0])]
    skipped = sum(len(r.seeds) for r in rows) - len(todo)
    bar = tqdm(todo, desc="suite", unit="run", disable=not progress, dynamic_ncols=True)
    if skipped:
        bar.write(f"{skipped} run(s) already in {runner.results_dir} with the same config: skipped")
    for row, seed in bar:
        bar.set_postfix(row=row.name, seed=seed)
        run = _run_one(runner, row, seed, bar.write)
        score = "diverged" if run.top1 is None else f"top-1 {run.top1:.2f}%"
        bar.write(f"{row.name} seed {seed}: {score} in {run.suite_wall_seconds / 60:.1f} min "
                  f"(load {run.load_avg_start[0]:.1f} -> {run.load_avg_end[0]:.1f})")
    bar.close()
    return [r for r in (_read(result_path(runner.results_dir, row.name)) for row in rows) if r is not None]


def unfinished_run(out: Path, config: TrainConfig) -> Optional[dict[str, Any]]:
    """Return the loop state of ``out/last.pt`` when it is a stopped run of exactly ``config``.

    None when there is no such file, or it is unreadable, or another config made it (the suite's
    recipe changed since): that folder is started afresh.
    """
    try:
        state = read_checkpoint(out / "last.pt")
    except (FileNotFoundError, ValueError):
        return None
    same = plain(dataclasses.asdict(config_from_dict(state["config"]))) == plain(dataclasses.asdict(config))
    return state if same else None


def _run_one(runner: _Runner, row: Row, seed: int, say: Callable[[str], Any] = print) -> SeedRun:
    """Train one seed of ``row`` (resuming it if it was stopped), record it in the row's JSON file."""
    config = row.train_config(seed)
    before = provenance()
    start = time.perf_counter()
    out = runner.work_dir / f"{row.name}-seed{seed}"
    stopped = unfinished_run(out, config)
    earlier_seconds = 0.0
    if stopped is not None:
        earlier_seconds = stopped["history"][-1]["wall_seconds"] if stopped["history"] else 0.0
        say(f"{row.name} seed {seed}: resuming after epoch {stopped['epoch']} from {out}")
    elif out.exists():
        shutil.rmtree(out)
    try:
        summary = runner.train_fn(config, data_dir=runner.data_dir, out=out,
                                  resume=stopped is not None, progress=False)
    except TrainingDiverged as err:  # a result too: the paper's no-norm/no-residual rows fail
        summary = {"final_test_acc": None, "diverged": str(err)}
    run = SeedRun(
        seed=seed, top1=summary["final_test_acc"], diverged=summary.get("diverged"),
        top5=summary.get("final_test_top5"), epochs=summary.get("epochs_completed"),
        steps=summary.get("steps"), train_seconds=summary.get("train_seconds"),
        wall_seconds=summary.get("wall_seconds"), train_images_per_s=summary.get("images_per_s"),
        device=summary.get("device"), amp=summary.get("amp"),
        train_config=plain(dataclasses.asdict(config)), command=runner.command,
        train_command=train_command(config, row, runner.data_arg),
        load_avg_start=before["load_avg"], load_avg_end=list(os.getloadavg()),
        date=before["date"], git_commit=before["git_commit"], git_dirty=before["git_dirty"],
        resumed_from_epoch=None if stopped is None else stopped["epoch"])
    if row.name in CHECKPOINT_ROWS and seed == row.seeds[0] and run.top1 is not None:
        target = runner.checkpoint_dir / f"{row.name}.pt"
        run.checkpoint_bytes = save_suite_checkpoint(
            out / "last.pt", target,
            {"suite_row": row.name, "top1": run.top1, "command": runner.command,
             "train_command": run.train_command})
        run.checkpoint = os.path.relpath(target, runner.results_dir)
        if runner.check_checkpoints:
            run.checkpoint_top1 = checkpoint_accuracy(target, runner.data_dir)
    run.suite_wall_seconds = earlier_seconds + time.perf_counter() - start
    _record(runner, row, run, before)
    if out.exists():  # a run that diverged at its first step never made its folder
        shutil.rmtree(out)
    return run


def _record(runner: _Runner, row: Row, run: SeedRun, before: dict[str, Any]) -> None:
    """Merge ``run`` into row ``row``'s JSON file beside the seeds it keeps, with the row's totals."""
    path = result_path(runner.results_dir, row.name)
    old = _read(path)
    keep = finished_seeds(old, row, runner.results_dir)
    runs = [r for r in (old or {}).get("runs", []) if r["seed"] in keep]
    costs = {k: old[k] for k in ("params", "macs", "throughput_cpu", "throughput_batch")
             } if old and keep else model_costs(row)
    runs = sorted(runs + [run.to_dict()], key=lambda r: r["seed"])
    top1 = [r["top1"] for r in runs]
    trained = [t for t in top1 if t is not None]
    _write(path, {
        "name": row.name, "group": row.group, "note": row.note,
        "config": row_config(row),
        "mixer": "+".join(dict.fromkeys(get_config(row.model, **row.overrides).token_mixers)),
        "complete": {r["seed"] for r in runs} == set(row.seeds),
        "top1_mean": statistics.fmean(trained) if trained else None, "top1_seeds": top1,
        "top1_std": statistics.stdev(trained) if len(trained) > 1 else None,
        **costs,
        "paper": None if row.paper is None else {**dataclasses.asdict(row.paper), "source": PAPER,
                                                 "dataset": "ImageNet-1K val", "model": "PoolFormer-S12"},
        "device": run.device, "command": runner.command, "runs": runs,
        **{k: v for k, v in before.items() if k != "load_avg"}})


# --- reading the results back ---------------------------------------------------------------------

def load_results(results_dir: Optional[str | os.PathLike] = None) -> list[dict[str, Any]]:
    """Return the result dicts of ``results_dir`` (default: the committed suite), in suite order."""
    results_dir = Path(results_dir) if results_dir is not None else default_results_dir()
    if not results_dir.is_dir():
        raise FileNotFoundError(f"no results folder {results_dir}; make it with "
                                f"`python -m metaformer_mini.experiments run`")
    order = {name: i for i, name in enumerate(list_rows())}
    results = [_read(p) for p in sorted(results_dir.glob("*.json"))]
    return sorted(results, key=lambda r: (order.get(r["name"], len(order)), r["name"]))


def results_table(results: Optional[Sequence[dict[str, Any]]] = None,
                  results_dir: Optional[str | os.PathLike] = None) -> list[dict[str, Any]]:
    """Return one flat row per result: our CIFAR-10 top-1 (mean, per seed), costs, the paper's top-1.

    The rows also fit ``analysis.plot_mixer_comparison`` and ``analysis.format_table``
    (keys name, mixer, params, macs, top1, throughput_cpu).
    """
    if results is None:
        results = load_results(results_dir)
    base = next((r["top1_mean"] for r in results if r["name"] == BASELINE), None)
    paper_base = ROWS[BASELINE].paper.top1
    table = []
    for r in results:
        paper = r.get("paper") or {}
        table.append({
            "name": r["name"], "group": r["group"], "mixer": r["mixer"], "model": r["config"]["model"],
            "top1": r["top1_mean"], "top1_seeds": r["top1_seeds"], "top1_std": r["top1_std"],
            "delta": None if base is None or r["top1_mean"] is None else r["top1_mean"] - base,
            "params": r["params"], "macs": r["macs"], "throughput_cpu": r["throughput_cpu"],
            "wall_minutes": sum(run["suite_wall_seconds"] for run in r["runs"]) / 60,
            "epochs": statistics.fmean(run["epochs"] or 0.0 for run in r["runs"]),
            "load_avg": statistics.fmean(run["load_avg_start"][0] for run in r["runs"]),
            "epochs_config": r["config"]["epochs"], "device": r["device"],
            "paper_top1": paper.get("top1"), "paper_table": paper.get("table"),
            "paper_delta": None if paper.get("top1") is None else paper["top1"] - paper_base})
    return table


def format_results_table(rows: Sequence[dict[str, Any]]) -> str:
    """Return the table as Markdown: our CIFAR-10 numbers beside the paper's ImageNet-1K numbers.

    "sd" is the sample standard deviation over a row's seeds ("-" with fewer than two).
    """
    def num(value: Optional[float], fmt: str, missing: str = "-") -> str:
        return missing if value is None else format(value, fmt)

    lines = ["| row | group | CIFAR-10 top-1 (mean) | sd | per seed | vs pooling | params (M) | MACs (M) "
             "| CPU img/s | epochs | wall (min) | paper ImageNet top-1 | paper vs S12 |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        paper = "-" if r["paper_top1"] is None else f"{r['paper_top1']:.1f} ({r['paper_table']})"
        seeds = " / ".join(num(t, ".2f", "diverged") for t in r["top1_seeds"])
        lines.append(
            f"| {r['name']} | {r['group']} | {num(r['top1'], '.2f', 'diverged')} | "
            f"{num(r['top1_std'], '.2f')} | {seeds} | {num(r['delta'], '+.2f')} | "
            f"{r['params'] / 1e6:.2f} | {r['macs'] / 1e6:.1f} | {r['throughput_cpu']:.0f} | "
            f"{r['epochs']:.1f} | {r['wall_minutes']:.1f} | {paper} | {num(r['paper_delta'], '+.1f')} |")
    runs = sum(len(r["top1_seeds"]) for r in rows)
    hours = sum(r["wall_minutes"] for r in rows) / 60
    devices = ", ".join(sorted({r["device"] for r in rows if r["device"]})) or "no device recorded"
    lines += ["", f"{runs} run{'s' * (runs != 1)} in {hours:.1f} hours of wall time ({devices})."]
    return "\n".join(lines)


# --- command line ----------------------------------------------------------------------------------

def main(argv: Optional[list[str]] = None) -> None:
    """Run the CLI: list the rows, run rows (resumable), or print the results table."""
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m metaformer_mini.experiments", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="the declared rows, their paper numbers, and which have results")
    run = sub.add_parser("run", help="train rows (all without ROW), skipping finished ones")
    run.add_argument("rows", nargs="*", metavar="ROW", help=f"rows to run: {', '.join(list_rows())}")
    run.add_argument("--data-dir", help="CIFAR-10 folder {train,test}/<class>/*.jpg "
                                         "(default: ../shared/data/cifar10)")
    run.add_argument("--checkpoint-dir", help="the small checkpoints' folder (default results/checkpoints)")
    run.add_argument("--work-dir", default="runs/suite",
                     help="folder of the seeds in training, one subfolder each, removed once "
                          "recorded; a stopped seed resumes from there (default runs/suite)")
    run.add_argument("--no-progress", action="store_true")
    table = sub.add_parser("table", help="print the results table (Markdown)")
    for action in (run, table, sub.choices["list"]):
        action.add_argument("--results-dir", help="folder of the row JSONs (default results/cifar10-suite)")
    args = p.parse_args(argv)
    try:
        if args.action == "list":
            results_dir = Path(args.results_dir) if args.results_dir else default_results_dir()
            for row in SUITE:
                paper = "-" if row.paper is None else f"{row.paper.top1} ({row.paper.table})"
                done = "done" if result_path(results_dir, row.name).is_file() else "todo"
                overrides = json.dumps(plain(row.overrides))
                print(f"{row.name:<20} {row.group:<11} {row.model:<22} {overrides:<68} "
                      f"seeds {','.join(map(str, row.seeds)):<4} paper {paper:<16} {done}")
        elif args.action == "run":
            for name in args.rows:
                get_row(name)  # a typo fails before anything trains
            run_suite(args.rows, args.data_dir, args.results_dir, args.checkpoint_dir,
                      command=shlex.join(["python", "-m", "metaformer_mini.experiments", *argv]),
                      progress=not args.no_progress, work_dir=args.work_dir)
        else:
            print(format_results_table(results_table(results_dir=args.results_dir)))
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
