"""gpuabst's own work, apart from the vendor library's: counted, and timed warm and cold.

    python benchmarks/bench_own_work.py [--source fixtures/nvidia/h100-80gb-hbm3.json] [--rounds 40] [--repeat 15]

1. Python bytecodes executed in gpuabst's own code for a one-shot snapshot and for a poll of 1 and 8
   replayed GPUs, the library answering instantly (each call's first answer kept). Unlike time on a
   shared machine this count does not vary from run to run, so it shows what a change to gpuabst's
   code saves.
2. The same reads timed with the instant library against the floor, best of repeated short batches
   (about 10 ms each, so that a stall of a shared machine, which can last a few hundred ms, spoils only
   the batches it falls in, not every one): the
   snapshot's own work per GPU, and at 0 GPUs its fixed cost.
3. At 0 GPUs (the fixed cost of a one-shot snapshot), single reads timed back to back and right
   after an unrelated workload: what the code's cold start adds where nothing else is read.
4. A full snapshot and a poll against the floor (benchmarks/bench_compare.py's raw pynvml loop) on
   the replayed library, only those tools alternating round by round ("warm"), and again with an
   unrelated workload between every two runs ("cold": caches hold something else, as when an agent
   sleeps between reads). Median of the round-by-round ratios to the floor.

The machines are copies of a real capture (labelled synthetic). Needs the benchmark extra.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_compare import interleaved, raw_pynvml_snapshot  # noqa: E402
from bench_snapshot import machine_line  # noqa: E402
from replayed_pynvml import install, make  # noqa: E402
from scale import add_peer_calls, scale_nvml  # noqa: E402

import gpuabst  # noqa: E402
from gpuabst.fixtures import format as fmt  # noqa: E402
from gpuabst.machine import Machine  # noqa: E402

ROOT = str(HERE.parent)


def instant(lib: types.ModuleType) -> types.ModuleType:
    """``lib`` with each NVML function answering every call after the first from memory, so that
    what remains is gpuabst's own work (and a dictionary lookup per call)."""
    import pynvml

    for name, fn in list(vars(lib).items()):
        if not (name.startswith("nvml") and callable(fn) and getattr(fn, "__name__", "") == name):
            continue
        answers: dict[Any, tuple[bool, Any]] = {}

        def remembered(*args: Any, _fn: Any = fn, _answers: dict[Any, tuple[bool, Any]] = answers,
                       **kwargs: Any) -> Any:
            key = (args, tuple(kwargs.items()))
            if key not in _answers:
                try:
                    _answers[key] = (True, _fn(*args, **kwargs))
                except pynvml.NVMLError as e:
                    _answers[key] = (False, e.value)
            answered, value = _answers[key]
            if not answered:
                raise pynvml.NVMLError(value)
            return value

        remembered.__name__ = name
        setattr(lib, name, remembered)
    return lib


def bytecodes(run: Callable[[], Any]) -> int:
    """Bytecodes executed by ``run()`` in gpuabst's own code (its package, its backends, the model
    classes attrs generates for it), not in the library, the standard library or the replay
    machinery (gpuabst.fixtures: the instant library hashes replayed handles, live handles are
    ctypes pointers)."""
    count = 0

    def ours(filename: str) -> bool:
        if filename.startswith("<attrs generated"):
            return True
        return (filename.startswith(ROOT) and "/benchmarks/" not in filename and "/gpuabst/fixtures/" not in filename
                and "/site-packages/" not in filename)  # a virtual environment inside the checkout

    def local(frame: types.FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "opcode":
            count += 1
        return local

    def trace(frame: types.FrameType, event: str, arg: Any) -> Any:
        if not ours(frame.f_code.co_filename):
            return None
        frame.f_trace_opcodes = True
        return local

    sys.settrace(trace)
    try:
        run()
    finally:
        sys.settrace(None)
    return count


def counts(source: fmt.Fixture) -> list[str]:
    rows = []
    for gpus in (1, 8):
        sys.modules["pynvml"] = instant(make(add_peer_calls(scale_nvml(source, gpus)))[0])
        m = Machine(backends=["nvml"])
        m.snapshot()
        m.poll()
        for _ in range(3):  # every cache gpuabst keeps is as it is in a long-running process
            gpuabst.snapshot(backends=["nvml"])
        one_shot = bytecodes(lambda: gpuabst.snapshot(backends=["nvml"]))
        poll = bytecodes(m.poll)
        m.close()
        rows.append(f"| {gpus} | {one_shot:,} | {one_shot // gpus:,} | {poll:,} | {poll // gpus:,} |")
    return rows


def own_times(source: fmt.Fixture, repeat: int) -> list[str]:
    """With the instant library: the floor, a one-shot snapshot and a poll, best of ``repeat`` x 10 timed
    batches of about 10 ms each; the snapshot's own work is its time less the floor's (at 0 GPUs: the
    fixed cost of opening, reading and closing)."""
    import timeit

    rows = []
    for gpus in (0, 1, 8):
        lib = instant(make(add_peer_calls(scale_nvml(source, gpus)))[0])
        sys.modules["pynvml"] = lib
        polling = Machine(backends=["nvml"])
        polling.snapshot()
        number = 100 // max(gpus, 1)
        best: dict[str, float] = {}
        def floor(lib: types.ModuleType = lib) -> int:
            return raw_pynvml_snapshot(lib)

        reads: dict[str, Callable[[], Any]] = {
            "floor": floor,
            "snapshot": lambda: gpuabst.snapshot(backends=["nvml"]),
            "poll": polling.poll,
        }
        for name, run in reads.items():
            run()
            best[name] = min(timeit.repeat(run, number=number, repeat=repeat * 10)) / number * 1e6
        polling.close()
        per = max(gpus, 1)
        rows.append(f"| {gpus} | {best['floor']:.1f} | {best['snapshot']:.1f} | "
                    f"{(best['snapshot'] - best['floor']) / per:.1f} | {best['poll'] / per:.1f} |")
    return rows


_UNRELATED = [{f"k{i}": list(range(20))} for i in range(800)]


def unrelated_work() -> int:
    """Something else for the caches to hold between two reads: encoding a JSON document."""
    return len(json.dumps(_UNRELATED))


def fixed_cost(source: fmt.Fixture, rounds: int) -> list[str]:
    """The fixed cost of a one-shot snapshot (a machine with no GPU, the library answering instantly),
    median of single reads back to back ("warm") and right after unrelated work ("cold")."""
    import time

    sys.modules["pynvml"] = lib = instant(make(add_peer_calls(scale_nvml(source, 0)))[0])
    reads: dict[str, Callable[[], Any]] = {"floor": lambda: raw_pynvml_snapshot(lib),
                                           "snapshot": lambda: gpuabst.snapshot(backends=["nvml"])}
    rows = []
    for name, read in reads.items():
        warm, cold = [], []
        read()
        for _ in range(rounds):
            t0 = time.perf_counter()
            read()
            warm.append(time.perf_counter() - t0)
            unrelated_work()
            t0 = time.perf_counter()
            read()
            cold.append(time.perf_counter() - t0)
        rows.append(f"| {name} | {statistics.median(warm) * 1e6:.1f} | {statistics.median(cold) * 1e6:.1f} |")
    return rows


def ratios(source: fmt.Fixture, rounds: int) -> list[str]:
    rows = []
    for gpus in (1, 8):
        nv, _, _ = install(add_peer_calls(scale_nvml(source, gpus)))
        polling = Machine(backends=["nvml"])
        polling.snapshot()
        def floor(nv: Any = nv) -> int:
            return raw_pynvml_snapshot(nv)

        tools: dict[str, Callable[[], Any]] = {
            "floor": floor,
            "snapshot": lambda: gpuabst.snapshot(backends=["nvml"]),
            "poll": polling.poll,
        }
        cold: dict[str, Callable[[], Any]] = {}
        for name, tool in tools.items():
            cold[name] = tool
            cold[f"unrelated after {name}"] = unrelated_work
        n = rounds * (8 if gpus == 1 else 1)  # a 1-GPU read is short: more rounds for the same time
        warm_samples, _ = interleaved(tools, n)
        cold_samples, _ = interleaved(cold, n)
        polling.close()
        for label, samples in (("warm", warm_samples), ("cold", cold_samples)):
            r = {k: statistics.median(a / b for a, b in zip(samples[k], samples["floor"], strict=True))
                 for k in ("snapshot", "poll")}
            rows.append(f"| {gpus} | {label} | {r['snapshot']:.2f}x | {r['poll']:.2f}x |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default=str(HERE.parent / "fixtures/nvidia/h100-80gb-hbm3.json"))
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=15, help="timed batches of the instant-library table")
    args = ap.parse_args()
    source = fmt.load(args.source)
    print(f"Machine: {machine_line()}  \nSource fixture: {args.source} ({source.provenance.get('kind')})\n")
    print("| GPUs | one-shot snapshot: bytecodes | per GPU | poll: bytecodes | per GPU |\n|---|---:|---:|---:|---:|")
    print("\n".join(counts(source)))
    print(f"\nThe library answering instantly, best of {args.repeat * 10} batches (µs)\n")
    print("| GPUs | floor | one-shot snapshot | its own work per GPU (at 0 GPUs: in all) | poll per GPU |\n"
          "|---|---:|---:|---:|---:|")
    print("\n".join(own_times(source, args.repeat)))
    print(f"\nAt 0 GPUs, {args.rounds * 10} single reads: median µs back to back and after unrelated work\n")
    print("| read | warm | cold |\n|---|---:|---:|")
    print("\n".join(fixed_cost(source, args.rounds * 10)))
    print(f"\n{args.rounds} rounds (x8 at 1 GPU); median of round-by-round ratios to the floor\n")
    print("| GPUs | caches | full snapshot | poll |\n|---|---|---:|---:|")
    print("\n".join(ratios(source, args.rounds)))


if __name__ == "__main__":
    main()
