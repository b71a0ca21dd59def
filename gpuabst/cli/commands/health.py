"""``gpuabst health``: the verdict on every GPU and on the node, with an exit status for probes.

Exit status (documented in docs/health.md): 0 all ok; 3 something warns; 4 something fails;
5 something is unknown and nothing warns or fails; 1 gpuabst itself could not run (bad policy
file, unreadable fixture); 2 usage error. ``--tolerate warn`` (or ``unknown``) exits 0 for those
levels, for a Kubernetes liveness probe that should not restart on a warning.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gpuabst.cli.argtypes import call_timeout_s, whole

if TYPE_CHECKING:  # the health model is imported when a command runs, not when the parser is built
    from gpuabst.health import HealthPolicy, Level, NodeHealth
    from gpuabst.health.verdict import DeviceHealth

EXIT_OK = 0
EXIT_WARN = 3
EXIT_FAIL = 4
EXIT_UNKNOWN = 5
EXIT_CODES = {"ok": EXIT_OK, "warn": EXIT_WARN, "fail": EXIT_FAIL, "unknown": EXIT_UNKNOWN}
"""The exit status of ``gpuabst health`` for each level (by its value)."""

DEFAULT_TIMEOUT_S = 5.0
"""health, watch and serve abandon a vendor call after this long unless --timeout says otherwise."""

SCHEMA_VERSION = 1


def exit_code(node: NodeHealth, tolerate: set[Level] | frozenset[Level] = frozenset()) -> int:
    """0 when every level present is ok or tolerated; otherwise the code of the most severe other one
    (fail before warn before unknown)."""
    from gpuabst.health import Level

    left = node.levels() - set(tolerate) - {Level.OK}
    for level in (Level.FAIL, Level.WARN, Level.UNKNOWN):
        if level in left:
            return EXIT_CODES[level.value]
    return EXIT_OK


def add_policy_options(p: argparse.ArgumentParser) -> None:
    """--policy FILE and --expect N, shared by health, watch and serve."""
    p.add_argument("--policy", metavar="FILE", default=None,
                   help="health policy file (JSON, or YAML with PyYAML) changing the default thresholds")
    p.add_argument("--expect", type=whole, default=None, metavar="N",
                   help="the node must have N GPUs (fewer fails); overrides expected_devices in --policy")


def policy_from_args(args: argparse.Namespace) -> HealthPolicy:
    from gpuabst.health import DEFAULT_POLICY, load_policy

    policy = load_policy(args.policy) if args.policy else DEFAULT_POLICY
    if args.expect is not None:
        policy = policy.replace(expected_devices=args.expect)
    return policy


def machine_from_args(args: argparse.Namespace) -> Any:
    """A Machine for the common options; vendor calls time out after DEFAULT_TIMEOUT_S by default."""
    from gpuabst.machine import Machine

    return Machine(args.fixture, backends=args.backend,
                   call_timeout_s=call_timeout_s(args.timeout, DEFAULT_TIMEOUT_S))


def parse_tolerate(values: list[str] | None) -> set[Level]:
    from gpuabst.health import Level

    return {Level(v) for v in values or []}


def health_document(node: NodeHealth, policy: HealthPolicy, *, mode: str, fixtures: list[str],
                    backends: Any, code: int) -> dict[str, Any]:
    """The versioned ``gpuabst health --json`` document."""
    from gpuabst import __version__
    from gpuabst.serialize import to_dict

    return {"schema": "gpuabst.health", "schema_version": SCHEMA_VERSION, "gpuabst_version": __version__,
            "mode": mode, "fixtures": fixtures, "verdict": node.level.value, "exit_code": code,
            "summary": node.summary, "node": to_dict(node), "backends": to_dict(backends),
            "policy": policy.as_dict()}


def _device_line(d: DeviceHealth) -> str:
    name = d.name or "?"
    return f"gpu{d.index:<2} {d.level.value.upper():<7} {d.bus_id or '-':<13} {name}"


def health_text(node: NodeHealth, verbose: bool = False) -> str:
    """The verdicts for a terminal: one line per device, then its checks that are not ok."""
    from gpuabst.health import Level

    lines = [f"node   {node.level.value.upper():<7} {node.summary if node.level is not Level.OK else ''}".rstrip()]
    for c in node.checks:
        if verbose or c.level not in (Level.OK, Level.NOT_APPLICABLE):
            lines.append(f"       {c.level.value:<14} {c.id:<22} {c.reason}")
    for d in node.devices:
        lines.append(_device_line(d))
        for c in d.checks:
            if verbose or c.level not in (Level.OK, Level.NOT_APPLICABLE):
                lines.append(f"       {c.level.value:<14} {c.id:<22} {c.reason}")
    return "\n".join(lines)


def cmd_health(args: argparse.Namespace) -> int:
    from gpuabst.health import evaluate

    policy = policy_from_args(args)
    if args.print_policy:
        sys.stdout.write(json.dumps(policy.as_dict(), indent=2) + "\n")
        return EXIT_OK
    tolerate = parse_tolerate(args.tolerate)
    with machine_from_args(args) as m:
        snap = m.snapshot()
        node = evaluate(snap, policy, include_all=args.all)
        code = exit_code(node, tolerate)
        if args.json:
            doc = health_document(node, policy, mode=m.mode, fixtures=[f.path for f in m.fixtures],
                                  backends=snap.backends, code=code)
            sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        else:
            print(health_text(node, args.verbose))
    return code


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> dict[str, Callable[..., int]]:
    p = sub.add_parser("health", help="the verdict on every GPU and the node (exit 0 ok, 3 warn, 4 fail, 5 unknown)",
                       description="Checks every GPU (memory/ECC, retired pages and rows, thermal, power, PCIe, "
                                   "clocks, presence, partitions) and the node. Exit status: 0 all ok, 3 warn, "
                                   "4 fail, 5 unknown (most severe wins), 1 error, 2 usage. A vendor call is "
                                   f"abandoned after {DEFAULT_TIMEOUT_S:g} s unless --timeout says otherwise "
                                   "(0: wait).")
    common(p)
    add_policy_options(p)
    p.add_argument("--json", action="store_true", help="print the versioned JSON document")
    p.add_argument("--tolerate", action="append", choices=["warn", "unknown"], default=None, metavar="LEVEL",
                   help="exit 0 for this level too (warn or unknown; repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="show every check, not only those that are not ok")
    p.add_argument("--all", action="store_true", help="include non-GPU devices (OpenCL CPU devices)")
    p.add_argument("--print-policy", action="store_true", help="print the policy in force as JSON and exit")
    return {"health": cmd_health}
