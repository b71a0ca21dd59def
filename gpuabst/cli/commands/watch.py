"""``gpuabst watch``: poll on an interval (static facts read once) and print what changes."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gpuabst.cli.argtypes import count, seconds
from gpuabst.cli.commands.health import add_policy_options, machine_from_args, policy_from_args
from gpuabst.cli.sigterm import stopped_by_sigterm

if TYPE_CHECKING:  # imported when the command runs, not when the parser is built
    from gpuabst.watch import WatchEvent


def _device_key(d: Any) -> Any:
    from gpuabst.watch import device_key

    return device_key(d)


def _first_lines(event: WatchEvent) -> list[str]:
    lines = [f"node {event.health.level.value}: {event.health.summary}"]
    by_key = {(v.bus_id or v.uuid or f"index {v.index}"): v for v in event.health.devices}
    for d in event.snapshot.devices:
        h = d.health
        key = _device_key(d)
        verdict = by_key.get(key)
        parts = [f"gpu{d.index}", key, str(d.name.get("?")), verdict.level.value if verdict else "-"]
        for label, r, unit in (("temp", h.temperature_c, " C"), ("power", h.power_draw_w, " W"),
                               ("util", h.utilization_gpu_pct, "%")):
            parts.append(f"{label} {r.value:g}{unit}" if r.ok and isinstance(r.value, (int, float))
                         else f"{label} <{r.status.value}>")
        lines.append("  ".join(parts))
    return lines


def _event_json(event: WatchEvent) -> dict[str, Any]:
    return {"sequence": event.sequence, "taken_at": event.snapshot.taken_at, "verdict": event.health.level.value,
            "devices": len(event.snapshot.devices),
            "changes": [{"device": c.device, "field": c.field, "before": c.before, "after": c.after}
                        for c in event.changes]}


def cmd_watch(args: argparse.Namespace) -> int:
    policy = policy_from_args(args)
    with stopped_by_sigterm(), machine_from_args(args) as m:  # a container's stop: exit 0
        from gpuabst.watch import watch

        for event in watch(m, interval_s=args.interval, count=args.count, policy=policy):
            if args.json:
                sys.stdout.write(json.dumps(_event_json(event), ensure_ascii=False) + "\n")
            elif event.sequence == 0:
                print("\n".join(_first_lines(event)))
            else:
                for c in event.changes:
                    print(f"{event.snapshot.taken_at}  {c.device}  {c.field}: {c.before} -> {c.after}")
            sys.stdout.flush()
    return 0


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> dict[str, Callable[..., int]]:
    p = sub.add_parser("watch", help="poll on an interval and print what changes",
                       description="Reads every device once, then polls only the values that change "
                                   "(temperatures, power, clocks, ECC counters, throttle reasons, memory use) "
                                   "and prints each change and each change of verdict.")
    common(p)
    add_policy_options(p)
    p.add_argument("--interval", type=seconds, default=5.0, metavar="SECONDS", help="time between polls (default 5)")
    p.add_argument("--count", type=count, default=None, metavar="N", help="stop after N readings (default: never)")
    p.add_argument("--json", action="store_true", help="one JSON object per reading (JSON lines)")
    return {"watch": cmd_watch}
