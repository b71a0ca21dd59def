"""The benchmark scripts run, on the smallest inputs, and print what docs/performance.md quotes.

Their numbers are measured elsewhere (benchmarks/, never asserted here); these tests only keep the
scripts working, so that a run on a machine lent for a few minutes is not lost to a broken script.
Scripts that need a real GPU or the benchmark extra (gpustat, nvitop) are left out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import FIXTURES, ROOT

BENCH = ROOT / "benchmarks"
H200 = FIXTURES / "nvidia" / "h200-nvml-idle.json"


def _run(script: str, *args: str) -> str:
    """The script's output, run as docs/performance.md runs it, with this interpreter's `gpuabst` first
    on PATH (the scripts start it as a command)."""
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _table(out: str) -> dict[str, list[str]]:
    """The rows of the output's Markdown tables by their first cell (the first table's where the same
    first cell comes again)."""
    rows: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line.startswith("| ") and "---" not in line:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.setdefault(cells[0], cells[1:])
    return rows


def test_bench_processes_times_every_command_it_finds() -> None:
    out = _run("bench_processes.py", "--repeat", "1", "--fixture", str(H200))
    rows = _table(out)
    for name in ("gpuabst list", "gpuabst list, scanning entry points on every start (GPUABST_CACHE_DIR=off)",
                 "gpuabst health", "gpuabst show --json", "gpuabst labels"):
        assert float(rows[name][0]) > 0, out
    # every gpuabst command replayed the fixture and exited 0 (or 3, a warning); others need a GPU here
    assert not [line for line in out.splitlines() if line.startswith("gpuabst") and " failed: " in line], out
    assert "byte code" in out


def test_bench_serve_http_times_metrics_and_healthz() -> None:
    out = _run("bench_serve_http.py", "--requests", "3", "--fixture", str(H200))
    rows = _table(out)
    assert float(rows["/metrics"][0]) > 0 and float(rows["/healthz (answered 200)"][0]) > 0, out
    samples = re.search(r"A /metrics answer: ([\d,]+) bytes, ([\d,]+) samples", out)
    assert samples and int(samples[2].replace(",", "")) > 100, out


def test_bench_soak_reports_growth() -> None:
    out = _run("bench_soak.py", "--polls", "200")
    assert re.search(r"RESULT: 200 polls of 8 replayed GPU\(s\), RSS growth [+-]\d+\.\d\d MiB", out), out


def test_bench_latency_lists_the_recorded_calls() -> None:
    out = _run("bench_latency.py", str(H200), "--backend", "nvml", "--repeat", "1")
    rows = _table(out)
    assert rows["nvmlInit"][0] == "1" and float(rows["nvmlInit"][1]) > 1000, out  # milliseconds, as recorded
    assert "sum of recorded call latencies" in out


def test_bench_poll_calls_counts_vendor_calls() -> None:
    out = _run("bench_poll_calls.py", "--gpus", "2", "--repeat", "1")
    rows = _table(out)
    assert int(rows["poll"][0]) < int(rows["first snapshot"][0]), out
    assert "/metrics scrape" in out


def test_bench_snapshot_times_the_start_with_and_without_the_entry_point_index() -> None:
    out = _run("bench_snapshot.py", "--repeat", "1", "--processes", "1", "--installed", "3")
    rows = _table(out)
    assert rows["`gpuabst list` on the replayed fixture, 3 more packages installed"][0].endswith("n=1)"), out
    assert "(`GPUABST_CACHE_DIR=off`)" in out and "full snapshot, replayed 8-GPU machine" in out
    listed = re.search(r"Imported by `gpuabst list` \(replaying NVML\): (.*)", out)
    assert listed and "email" not in listed[1].split() and "pynvml" not in listed[1].split(), out


def test_bench_own_work_counts_and_times_the_fixed_cost() -> None:
    out = _run("bench_own_work.py", "--rounds", "1", "--repeat", "1")
    rows = _table(out)
    assert int(rows["1"][0].replace(",", "")) > int(rows["1"][2].replace(",", "")), out  # snapshot > poll
    assert float(rows["snapshot"][0]) > 0 and float(rows["floor"][1]) > 0, out
    assert re.search(r"\| 8 \| cold \| \d+\.\d\dx \| \d+\.\d\dx \|", out), out


def test_bench_ab_runs_a_benchmark_against_a_base_revision_and_this_checkout(tmp_path: Path) -> None:
    import shutil

    repo = tmp_path / "repo"  # a repository of its own: the test needs no git history of this checkout
    for part in ("gpuabst", "backends"):
        shutil.copytree(ROOT / part, repo / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    git = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-C", str(repo), *command], check=True, env=git, capture_output=True)
    out = _run("bench_ab.py", "--repo", str(repo), "--base", "HEAD", "--runs", "1", "--row", "snapshot",
               "--column", "warm", "--", "bench_own_work.py", "--rounds", "1", "--repeat", "1")
    summary = {(cells[0], cells[1]): cells[2:] for cells in
               ([c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
                if line.startswith("| snapshot |"))}
    for version in ("base", "this"):
        median, _range, runs = summary[("snapshot", version)]
        assert float(median) > 0 and runs == "1", out
    listed = subprocess.run(["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True).stdout
    assert len(listed.splitlines()) == 1, listed  # the base's worktree is gone


def test_bench_ab_takes_the_named_column_of_the_named_rows() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from bench_ab import values
    finally:
        sys.path.remove(str(BENCH))
    out = ("x\n| GPUs | tool | median ms | vs floor |\n|---|---|---|---|\n"
           "| 1 | raw loop (floor) | 0.61 | 1.00x |\n| 1 | gpuabst full snapshot | 0.84 | 1.39x (1.31-1.48) |\n\n"
           "| read | warm |\n|---|---:|\n| snapshot | 1,234.5 |\n")
    assert values(out, ["full snapshot", "floor", "absent"], "vs floor") == {"full snapshot": 1.39, "floor": 1.0}
    assert values(out, ["snapshot"], "warm") == {"snapshot": 1234.5}


def test_bench_ab_says_which_revision_it_cannot_check_out(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    done = subprocess.run([sys.executable, str(BENCH / "bench_ab.py"), "--repo", str(tmp_path), "--base", "nosuchrev",
                           "--row", "x", "--", "bench_own_work.py"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "cannot check 'nosuchrev' out of" in done.stderr, done.stderr


def test_the_floors_make_exactly_the_nvml_calls_of_a_gpuabst_snapshot_and_poll(monkeypatch: Any) -> None:
    """bench_compare.py's two floors stand for gpuabst's snapshot and poll only while they make the same
    calls: each function asked as often, on the same replayed 2-GPU machine."""
    from collections import Counter

    import gpuabst
    from gpuabst.fixtures import format as fmt
    from gpuabst.machine import Machine

    monkeypatch.syspath_prepend(str(BENCH))
    from bench_compare import raw_pynvml_poll, raw_pynvml_snapshot
    from replayed_pynvml import make
    from scale import add_peer_calls, scale_nvml

    nv, tape, _ = make(add_peer_calls(scale_nvml(fmt.load(FIXTURES / "nvidia" / "h100-80gb-hbm3.json"), 2)))
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    asked: Counter[str] = Counter()
    play = tape.play

    def counted(fn: str, args: Any, kwargs: Any) -> Any:
        asked[fn] += 1
        return play(fn, args, kwargs)

    monkeypatch.setattr(tape, "play", counted)

    def calls_of(run: Any) -> Counter[str]:
        asked.clear()
        run()
        return Counter(asked)

    snapshot = calls_of(lambda: gpuabst.snapshot(backends=["nvml"]))
    assert snapshot["nvmlDeviceGetHandleByIndex"] == 2 and snapshot == calls_of(lambda: raw_pynvml_snapshot(nv))

    with Machine(backends=["nvml"]) as machine:
        machine.snapshot()
        machine.poll()  # the first poll learns which calls a device does not support
        poll = calls_of(machine.poll)
        nv.nvmlInit()
        handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(2)]
        unsupported: set[tuple[int, str]] = set()
        raw_pynvml_poll(nv, handles, unsupported)
        assert unsupported  # this H100 answers some poll calls NOT_SUPPORTED (fan, retired pages)
        floor = calls_of(lambda: raw_pynvml_poll(nv, handles, unsupported))
        assert poll["nvmlDeviceGetTemperatureV"] == 2 and poll == floor
