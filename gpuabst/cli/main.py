"""``gpuabst``: list, show and capture GPUs, and import vendor tools' output as fixtures.

Errors are one line on stderr (``gpuabst: error: ...``), never a traceback; set GPUABST_DEBUG=1
to see the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from gpuabst import __version__
from gpuabst.cli import stdout
from gpuabst.cli.argtypes import call_timeout_s, seconds
from gpuabst.errors import GpuabstError, UsageError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fixture", action="append", metavar="FILE", default=None,
                   help="replay this fixture instead of touching hardware (repeatable; "
                        "default: $GPUABST_FIXTURE)")
    p.add_argument("--backend", action="append", metavar="NAME", default=None,
                   help="use only this backend (repeatable; default: $GPUABST_BACKENDS, else all)")
    p.add_argument("--timeout", type=seconds, default=None, metavar="SECONDS",
                   help="abandon a vendor call that takes longer than this (0: wait for ever)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpuabst", description="One interface over every GPU vendor stack.")
    parser.add_argument("--version", action="version", version=f"gpuabst {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("backends", help="each backend: available or not, why, what to install")
    _common(p)
    p.add_argument("--json", action="store_true", help="print the versioned JSON document")

    for name, text in (("list", "one line per device"), ("show", "everything about every device")):
        p = sub.add_parser(name, help=text)
        _common(p)
        p.add_argument("--json", action="store_true", help="print the versioned JSON document")
        p.add_argument("--all", action="store_true", help="include non-GPU devices (OpenCL CPU devices)")

    p = sub.add_parser("capture", help="record every vendor call on this machine into a fixture")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--backend", action="append", metavar="NAME", default=None)
    p.add_argument("--no-scrub", action="store_true", help="keep serials, UUIDs and the host name")
    p.add_argument("--note", default=None, help="free text stored in the fixture's provenance")

    p = sub.add_parser("import", help="turn a vendor tool's saved output into a fixture")
    p.add_argument("kind", metavar="KIND", help="which tool's output: nvidia-smi-xml, nvidia-smi-text, rocm-smi-json, "
                                                "amd-smi-json, clinfo, or a plugin's importer")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.add_argument("--no-scrub", action="store_true", help="keep serials and UUIDs")
    _register_extra(sub)
    return parser


def _machine(args: argparse.Namespace) -> Any:
    from gpuabst.machine import Machine

    return Machine(args.fixture, backends=args.backend, call_timeout_s=call_timeout_s(args.timeout))


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def cmd_backends(args: argparse.Namespace) -> int:
    from gpuabst.cli import documents, render

    with _machine(args) as m:
        reports = m.backend_reports()
        if args.json:
            _print_json(documents.backends_document(reports, m.mode, [f.path for f in m.fixtures]))
        else:
            print(render.backends_text(reports))
    return EXIT_OK


def cmd_list_or_show(args: argparse.Namespace) -> int:
    from gpuabst.cli import documents, render

    with _machine(args) as m:
        snap = m.snapshot()
        fixtures = [f.path for f in m.fixtures]
        if args.json:
            make = documents.list_document if args.command == "list" else documents.show_document
            _print_json(make(snap, m.mode, fixtures, include_all=args.all))
        elif args.command == "list":
            print(render.list_text(snap, args.all))
        else:
            print(render.show_text(snap, args.all))
    return EXIT_OK


def cmd_capture(args: argparse.Namespace) -> int:
    from gpuabst.fixtures.format import save
    from gpuabst.machine import Machine

    if os.environ.get("GPUABST_FIXTURE"):
        raise UsageError("GPUABST_FIXTURE is set: capture records real hardware; unset it first")
    m = Machine([], backends=args.backend, capture=True)
    fixture = m.capture(scrub=not args.no_scrub, note=args.note)
    reports = m.backend_reports()
    if not fixture.backends or not any(r.available for r in reports):
        reasons = "; ".join(f"{r.name}: {r.reason}" for r in reports if not r.available)
        raise GpuabstError(f"no backend could run here, nothing captured ({reasons})")
    save(fixture, args.output)
    calls = sum(len(r.calls) for r in fixture.backends.values())
    print(f"captured {calls} vendor calls from {', '.join(fixture.backends)} into {args.output}"
          + ("" if args.no_scrub else " (scrubbed)"))
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from gpuabst.fixtures.format import save
    from gpuabst.fixtures.importers import run_importer

    fixture = run_importer(args.kind, args.files, scrub=not args.no_scrub)
    save(fixture, args.output)
    n = sum(len(r.calls) for r in fixture.backends.values())
    print(f"imported {', '.join(args.files)} as {args.kind}: {n} calls into {args.output}")
    return EXIT_OK


COMMANDS = {"backends": cmd_backends, "list": cmd_list_or_show, "show": cmd_list_or_show,
            "capture": cmd_capture, "import": cmd_import}

EXTRA_COMMAND_MODULES: list[str] = ["matrix", "compare"]
"""Modules under gpuabst.cli.commands, each with ``register(subparsers, common)`` adding its
subcommand(s) and returning ``{name: run(args) -> int}``."""
EXTRA_COMMAND_MODULES += ["health", "watch", "serve"]
EXTRA_COMMAND_MODULES += ["akash"]


def _register_extra(sub: Any) -> None:
    import importlib

    for mod in EXTRA_COMMAND_MODULES:
        module = importlib.import_module(f"gpuabst.cli.commands.{mod}")
        COMMANDS.update(module.register(sub, _common))


def main(argv: Sequence[str] | None = None) -> int:
    stdout.tolerate_unencodable()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = COMMANDS[args.command](args)
        sys.stdout.flush()  # a full disk shows here, as one line, not as a traceback at exit
        return code
    except UsageError as e:
        print(f"gpuabst: usage error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except GpuabstError as e:
        print(f"gpuabst: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        stdout.drop()
        return EXIT_OK
    except OSError as e:
        if e.errno not in stdout.OUTPUT_ERRNOS:
            return _internal_error(e)
        stdout.drop()
        print(f"gpuabst: error: cannot write the output: {e.strerror or e}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # never a traceback for the user; opt in with GPUABST_DEBUG
        return _internal_error(e)


def _internal_error(e: BaseException) -> int:
    if os.environ.get("GPUABST_DEBUG"):
        import traceback

        traceback.print_exception(e)
    print(f"gpuabst: internal error: {type(e).__name__}: {e} (set GPUABST_DEBUG=1 for details)",
          file=sys.stderr)
    return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
