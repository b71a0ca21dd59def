"""``gpuabst matrix``: which fields each backend reports, from fixtures or from this machine."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpuabst.cli.argtypes import call_timeout_s
from gpuabst.errors import GpuabstError, UsageError

FORMATS = ("text", "markdown", "json", "html")


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> dict[str, Callable[..., int]]:
    p = sub.add_parser("matrix", help="support matrix: what each backend reports for every field",
                       description="Rows are the fields of the common model, columns are backends (or, with "
                                   "--by-fixture, each fixture or live device); cells say ok / unsupported / "
                                   "no permission / not applicable / not recorded / error with the vendor call.")
    common(p)
    p.add_argument("--fixtures-dir", action="append", metavar="DIR", default=None,
                   help="every fixture under DIR (*.json but *.expected.json), each replayed on its own (repeatable)")
    by = p.add_mutually_exclusive_group()
    by.add_argument("--by-fixture", action="store_true", help="one column per fixture (or live device)")
    by.add_argument("--by-vendor", action="store_true",
                    help="one column per backend and device vendor (OpenCL on AMD apart from OpenCL on NVIDIA)")
    p.add_argument("--all", action="store_true", help="include non-GPU devices (OpenCL CPU devices)")
    p.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("-o", "--output", metavar="FILE", default=None, help="write here instead of stdout")
    p.add_argument("--check", action="store_true",
                   help="with -o: do not write, exit 1 if FILE differs from what would be written")
    return {"matrix": run}


def command_line(args: argparse.Namespace) -> str:
    """The canonical command line that produces this output (recorded in the Markdown)."""
    parts = ["gpuabst", "matrix"]
    for f in args.fixture or []:
        parts += ["--fixture", f]
    for d in args.fixtures_dir or []:
        parts += ["--fixtures-dir", d]
    for b in args.backend or []:
        parts += ["--backend", b]
    parts += (["--by-fixture"] if args.by_fixture else []) + (["--by-vendor"] if args.by_vendor else [])
    parts += ["--all"] if args.all else []
    parts += ["--format", args.format]
    if args.output:
        parts += ["-o", args.output]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    from gpuabst.evaluate import render
    from gpuabst.evaluate.matrix import build_matrix
    from gpuabst.evaluate.observe import observe

    if args.json:
        args.format = "json"
    if args.check and not args.output:
        raise UsageError("--check needs -o FILE: the file to compare with")
    from gpuabst.machine import fixtures_from_env
    from gpuabst.registry import wanted_names

    fixtures = args.fixture or ([] if args.fixtures_dir else fixtures_from_env())
    observations = observe(fixtures, args.fixtures_dir or [], include_all=args.all,
                           backends=wanted_names(args.backend), call_timeout_s=call_timeout_s(args.timeout))
    if not observations:
        raise GpuabstError("nothing to show: no backend ran (see `gpuabst backends`), or no fixture was found")
    m = build_matrix(observations, by_fixture=args.by_fixture, by_vendor=args.by_vendor)
    if args.format == "markdown":
        text = render.render_markdown(m, command=command_line(args))
    elif args.format == "json":
        text = render.render_json(m)
    elif args.format == "html":
        text = render.render_html(m)
    else:
        text = render.render_text(m) + "\n"
    if not args.output:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if args.check:
        from gpuabst.safe_io import read_capped

        current = read_capped(out, 4 * len(text.encode()) + 2**20, "a support matrix gpuabst wrote",
                              error=GpuabstError).decode("utf-8", "replace")
        if current != text:
            print(f"{out} is out of date; regenerate it with: {command_line(args)}", file=sys.stderr)
            return 1
        print(f"{out} is up to date")
        return 0
    from gpuabst.safe_io import write_text

    write_text(out, text, error=GpuabstError)
    print(f"wrote {out} ({len(m.columns)} columns, {len(m.rows)} fields, {len(m.fixtures)} observations)")
    return 0
