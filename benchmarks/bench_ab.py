"""One benchmark run against two versions of gpuabst, taking turns: what a change is worth on a machine
whose speed drifts from minute to minute.

    python benchmarks/bench_ab.py --base REV [--runs 8] --row "gpuabst full snapshot" [--row ...] \\
        [--column "vs floor"] -- bench_compare.py --gpus 1 --repeat 150

The base revision is checked out in a temporary git worktree (removed afterwards); the benchmark script
of this checkout then runs ``--runs`` times against each version, the two alternating and taking turns
at going first, each run a fresh interpreter with that version's gpuabst and backends first on
PYTHONPATH (checked before the first run). From each run's Markdown tables the value in ``--column``
of every row with a cell containing a ``--row`` text is taken (its leading number: ``1.33x (1.28-1.36)``
gives 1.33). Prints each run's values, then each version's median and range. ``--repo`` names another
git repository holding gpuabst/ and backends/ (the base is looked up there; "this" version stays this
checkout).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def values(output: str, rows: list[str], column: str) -> dict[str, float]:
    """``{row text: value}`` from the Markdown tables of ``output``: the first row with a cell containing
    the text, in the first table that has ``column`` among its headers (the row's number there)."""
    found: dict[str, float] = {}
    header: list[str] | None = None
    for line in output.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if column not in header or set("".join(cells)) <= set("-: "):
            continue
        at = header.index(column)
        for text in rows:
            if text not in found and at < len(cells) and any(text in c for c in cells):
                number = NUMBER.search(cells[at])
                if number:
                    found[text] = float(number[0].replace(",", ""))
    return found


def env_for(tree: Path) -> dict[str, str]:
    """This environment with ``tree``'s gpuabst and backends first on the import path."""
    paths = [str(tree), str(tree / "backends"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}


def run_against(tree: Path, script: list[str]) -> str:
    """The benchmark's output, run against ``tree``'s version."""
    env = env_for(tree)
    done = subprocess.run([sys.executable, str(HERE / script[0]), *script[1:]], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{script[0]} failed against {tree}:\n{done.stderr[-2000:]}")
    return done.stdout


def imported_from(tree: Path) -> list[str]:
    """Where a fresh interpreter with ``tree`` first on PYTHONPATH finds gpuabst and its NVML backend."""
    probe = "import gpuabst, gpuabst_nvml; print(gpuabst.__file__); print(gpuabst_nvml.__file__)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env_for(tree),
                          cwd=tempfile.gettempdir())  # not a folder holding a gpuabst of its own
    return done.stdout.split()


def summary(samples: dict[str, dict[str, list[float]]], rows: list[str]) -> list[str]:
    out = ["| row | version | median | range | runs |", "|---|---|---:|---|---:|"]
    for text in rows:
        for version, by_row in samples.items():
            got = by_row[text]
            if got:
                spread = f"{min(got):g}-{max(got):g}"
                out.append(f"| {text} | {version} | {statistics.median(got):g} | {spread} | {len(got)} |")
            else:
                out.append(f"| {text} | {version} | (not found) | | 0 |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the git revision to compare this checkout with")
    ap.add_argument("--repo", default=str(ROOT), help="the git repository the base revision is taken from")
    ap.add_argument("--runs", type=int, default=8, help="runs of the benchmark against each version")
    ap.add_argument("--row", action="append", required=True, help="text of a table row to take (repeatable)")
    ap.add_argument("--column", default="vs floor", help="the column header whose value is taken")
    ap.add_argument("script", nargs=argparse.REMAINDER, help="-- SCRIPT [ARGS]: a script in benchmarks/")
    args = ap.parse_args()
    script = args.script[1:] if args.script[:1] == ["--"] else args.script
    if not script:
        ap.error("name the benchmark script after --")
    with tempfile.TemporaryDirectory(prefix="gpuabst-base-") as tmp:
        base = Path(tmp) / "tree"
        added = subprocess.run(["git", "-C", args.repo, "worktree", "add", "--detach", "--quiet", str(base), args.base],
                               capture_output=True, text=True)
        if added.returncode != 0:
            raise SystemExit(f"cannot check {args.base!r} out of {args.repo}: {added.stderr.strip()}")
        try:
            # byte code written once here: where the environment forbids it, every run would compile the base
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(base / "gpuabst"), str(base / "backends")],
                           check=True)
            trees = {"base": base, "this": ROOT}
            for version, tree in trees.items():
                where = imported_from(tree)
                if len(where) != 2 or not all(Path(w).resolve().is_relative_to(tree.resolve()) for w in where):
                    raise SystemExit(f"the {version} version's gpuabst is not the one imported: {where}")
            samples: dict[str, dict[str, list[float]]] = {v: {r: [] for r in args.row} for v in trees}
            print(f"Base: {args.base}; this: {ROOT}; {' '.join(script)}; column {args.column!r}\n")
            print("| run | version | " + " | ".join(args.row) + " |\n|---|---|" + "---:|" * len(args.row))
            for run in range(args.runs):
                order = list(trees) if run % 2 == 0 else list(reversed(trees))
                for version in order:
                    got = values(run_against(trees[version], script), args.row, args.column)
                    for text, value in got.items():
                        samples[version][text].append(value)
                    cells = " | ".join(f"{got[t]:g}" if t in got else "-" for t in args.row)
                    print(f"| {run + 1} | {version} | {cells} |", flush=True)
            print()
            print("\n".join(summary(samples, args.row)))
        finally:
            subprocess.run(["git", "-C", args.repo, "worktree", "remove", "--force", str(base)], check=False)


if __name__ == "__main__":
    main()
