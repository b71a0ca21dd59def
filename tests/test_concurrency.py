"""Concurrency (issue 8, reliability 4): 8 threads polling one replayed 8-GPU machine 1,000 times each
give no error and exactly the single-threaded result."""

from __future__ import annotations

import threading
from typing import Any

from synthetic import nvml_fixture

from gpuabst.machine import Machine
from gpuabst.serialize import to_dict

THREADS = 8
POLLS = 1000


def _comparable(snap: Any) -> Any:
    doc = to_dict(snap)
    doc.pop("taken_at")
    return doc


def test_eight_threads_polling_one_machine() -> None:
    fixture = nvml_fixture(8, mig=True)
    with Machine([fixture], backends=["nvml"]) as reference:
        reference.snapshot()
        expected = _comparable(reference.poll())
    with Machine([fixture], backends=["nvml"]) as m:
        m.snapshot()
        errors: list[BaseException] = []
        mismatches: list[int] = []
        done = [0] * THREADS
        start = threading.Barrier(THREADS)

        def worker(n: int) -> None:
            start.wait()
            try:
                for i in range(POLLS):
                    if _comparable(m.poll()) != expected:
                        mismatches.append(i)
                    done[n] += 1
            except BaseException as e:  # collected, asserted below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert mismatches == []
    assert done == [POLLS] * THREADS
