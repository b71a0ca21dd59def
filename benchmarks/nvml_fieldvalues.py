"""Could one nvmlDeviceGetFieldValues call replace several of a poll's calls? (Needs a real GPU.)

    python benchmarks/nvml_fieldvalues.py [--repeat 200]

A poll of an H100 makes 17 NVML calls per GPU; seven of them (four ECC counters, row remapping, power
draw, enforced power limit) have field ids that nvmlDeviceGetFieldValues answers in one call. On GPU 0
this asks both ways, says for each fact whether the two agree (and what each field answered), and
times the individual calls against the one batched call (medians). Deciding whether gpuabst's polls
should batch needs these answers from real drivers: a replay cannot say what a batch costs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

_UNION_MEMBER = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}
"""nvmlValueType_t -> the member of c_nvmlValue_t holding the value."""


def facts(nv: Any) -> list[tuple[str, int, Callable[[Any], Any]]]:
    """(what, field id, the individual call giving the same fact)."""
    return [
        ("ECC corrected, volatile", nv.NVML_FI_DEV_ECC_SBE_VOL_TOTAL,
         lambda h: nv.nvmlDeviceGetTotalEccErrors(h, 0, 0)),
        ("ECC uncorrected, volatile", nv.NVML_FI_DEV_ECC_DBE_VOL_TOTAL,
         lambda h: nv.nvmlDeviceGetTotalEccErrors(h, 1, 0)),
        ("ECC corrected, aggregate", nv.NVML_FI_DEV_ECC_SBE_AGG_TOTAL,
         lambda h: nv.nvmlDeviceGetTotalEccErrors(h, 0, 1)),
        ("ECC uncorrected, aggregate", nv.NVML_FI_DEV_ECC_DBE_AGG_TOTAL,
         lambda h: nv.nvmlDeviceGetTotalEccErrors(h, 1, 1)),
        ("remapped rows, corrected", nv.NVML_FI_DEV_REMAPPED_COR, lambda h: nv.nvmlDeviceGetRemappedRows(h)[0]),
        ("remapped rows, uncorrected", nv.NVML_FI_DEV_REMAPPED_UNC, lambda h: nv.nvmlDeviceGetRemappedRows(h)[1]),
        ("remapped rows, pending", nv.NVML_FI_DEV_REMAPPED_PENDING, lambda h: nv.nvmlDeviceGetRemappedRows(h)[2]),
        ("remapped rows, failure", nv.NVML_FI_DEV_REMAPPED_FAILURE, lambda h: nv.nvmlDeviceGetRemappedRows(h)[3]),
        ("power draw, mW", nv.NVML_FI_DEV_POWER_INSTANT, nv.nvmlDeviceGetPowerUsage),
        ("enforced power limit, mW", nv.NVML_FI_DEV_POWER_CURRENT_LIMIT, nv.nvmlDeviceGetEnforcedPowerLimit),
    ]


def field_value(field: Any) -> tuple[Any, int]:
    """(value or None, NVML return code) of one c_nvmlFieldValue_t."""
    code = int(field.nvmlReturn)
    if code != 0:
        return None, code
    member = _UNION_MEMBER.get(int(field.valueType))
    return (getattr(field.value, member) if member else None), code


def individual_calls(nv: Any) -> list[Callable[[Any], Any]]:
    """The distinct NVML calls behind the facts (row remapping is one call for four facts)."""
    return [
        lambda h: nv.nvmlDeviceGetTotalEccErrors(h, 0, 0), lambda h: nv.nvmlDeviceGetTotalEccErrors(h, 1, 0),
        lambda h: nv.nvmlDeviceGetTotalEccErrors(h, 0, 1), lambda h: nv.nvmlDeviceGetTotalEccErrors(h, 1, 1),
        nv.nvmlDeviceGetRemappedRows, nv.nvmlDeviceGetPowerUsage, nv.nvmlDeviceGetEnforcedPowerLimit,
    ]


def median_us(fn: Callable[[], Any], repeat: int, error: type[BaseException]) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        try:
            fn()
        except error:
            pass
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def compare(nv: Any, handle: Any, repeat: int) -> list[str]:
    """Report lines: each fact both ways, then the timing."""
    table = facts(nv)
    lines = ["| fact | individual call | field value (return code) | agree | NVML's latencyUsec |",
             "|---|---|---|---|---:|"]
    batch = nv.nvmlDeviceGetFieldValues(handle, [fid for _, fid, _ in table])
    for (what, _, call), field in zip(table, batch, strict=True):
        try:
            single: Any = int(call(handle))
        except nv.NVMLError as e:
            single = f"error {e}"
        value, code = field_value(field)
        agree = "yes" if value is not None and single == int(value) else "no"
        lines.append(f"| {what} | {single} | {value} ({code}) | {agree} | {int(field.latencyUsec)} |")
    calls = individual_calls(nv)

    def one_by_one() -> None:
        for c in calls:
            try:
                c(handle)
            except nv.NVMLError:
                pass

    ids = [fid for _, fid, _ in table]
    separate = median_us(one_by_one, repeat, nv.NVMLError)
    batched = median_us(lambda: nv.nvmlDeviceGetFieldValues(handle, ids), repeat, nv.NVMLError)
    lines.append(f"\n{len(calls)} individual calls: {separate:.1f} µs; one nvmlDeviceGetFieldValues for the same "
                 f"{len(ids)} facts: {batched:.1f} µs (medians of {repeat})")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    import pynvml as nv

    nv.nvmlInit()
    try:
        print("\n".join(compare(nv, nv.nvmlDeviceGetHandleByIndex(0), args.repeat)))
    finally:
        nv.nvmlShutdown()


if __name__ == "__main__":
    main()
