"""``gpuabst compare A B``: what differs between two fixtures or ``show --json`` documents."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> dict[str, Callable[..., int]]:
    p = sub.add_parser("compare", help="what differs between two fixtures or saved `show --json` documents",
                       description="Devices are matched by PCI bus id, then by order; every field of the model "
                                   "is compared by value and by status.")
    p.add_argument("a", metavar="A", help="a fixture or a `gpuabst show --json` document")
    p.add_argument("b", metavar="B", help="a fixture or a `gpuabst show --json` document")
    p.add_argument("--a-backend", action="append", metavar="NAME", default=None,
                   help="only this backend of A (repeatable): compare one fixture's NVML and OpenCL views")
    p.add_argument("--b-backend", action="append", metavar="NAME", default=None, help="only this backend of B")
    p.add_argument("--ignore", action="append", metavar="GLOB", default=[],
                   help="leave out fields matching this pattern (repeatable), e.g. 'health.*'")
    p.add_argument("--static", action="store_true",
                   help="leave out what changes from moment to moment (health readings, memory in use)")
    p.add_argument("--json", action="store_true", help="print the versioned JSON document")
    return {"compare": run}


def run(args: argparse.Namespace) -> int:
    from gpuabst.evaluate.compare import DYNAMIC, compare, comparison_json, comparison_text, load_side

    a = load_side(args.a, backends=args.a_backend)
    b = load_side(args.b, backends=args.b_backend)
    ignore = list(args.ignore) + (list(DYNAMIC) if args.static else [])
    result = compare(a, b, ignore=ignore)
    if args.json:
        sys.stdout.write(json.dumps(comparison_json(result), indent=2, ensure_ascii=False, default=str) + "\n")
    else:
        print(comparison_text(result))
    return 0
