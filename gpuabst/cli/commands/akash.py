"""``gpuabst labels``, ``gpuabst attributes`` and ``gpuabst inventory``: what an Akash provider publishes.

All three read the machine the same way as ``gpuabst list`` (live, or ``--fixture`` / ``$GPUABST_FIXTURE``),
and name GPUs from the built-in catalog or from ``--gpu-db FILE`` (Akash's ``gpus.json`` format;
default ``$GPUABST_GPU_DB``). Documented in docs/akash.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from gpuabst import __version__
from gpuabst.cli.argtypes import call_timeout_s, positive_seconds

SCHEMA_VERSION = 1


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> dict[str, Callable[..., int]]:
    p = sub.add_parser("labels", help="Kubernetes node labels for Akash (or an NFD feature file)")
    common(p)
    _gpu_db(p)
    p.add_argument("--format", choices=("akash", "nfd"), default="akash",
                   help="akash: name=value lines as Akash's inventory operator writes them; nfd: a Node "
                        "Feature Discovery local-source feature file (features.d)")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write to FILE (atomically, through a hidden temporary file) instead of stdout")
    p.add_argument("--no-driver-labels", action="store_true", help="leave out the gpuabst/driver.* labels")
    p.add_argument("--expires-in", type=positive_seconds, default=None, metavar="SECONDS",
                   help="nfd: add '# +expiry-time' so NFD drops the labels if they are not refreshed in time")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 1) instead of leaving out a label that breaks Kubernetes' rules")

    p = sub.add_parser("attributes", help="Akash provider attributes (provider.yaml) for this node's GPUs")
    common(p)
    _gpu_db(p)
    p.add_argument("--format", choices=("akash",), default="akash", help="akash: YAML for provider.yaml")
    p.add_argument("-o", "--output", metavar="FILE", default=None)

    p = sub.add_parser("inventory", help="Akash inventory GPUInfo records for this node's GPUs")
    common(p)
    _gpu_db(p)
    p.add_argument("--json", action="store_true", help="print the versioned JSON document")
    return {"labels": cmd_labels, "attributes": cmd_attributes, "inventory": cmd_inventory}


def _gpu_db(p: argparse.ArgumentParser) -> None:
    if not any("--gpu-db" in a.option_strings for a in p._actions):
        p.add_argument("--gpu-db", metavar="FILE", default=None,
                       help="name GPUs from this database in Akash's gpus.json format instead of the built-in "
                            "catalog (default: $GPUABST_GPU_DB)")


def _read(args: argparse.Namespace) -> tuple[Any, Any, list[Any], list[Any], str]:
    """The snapshot, the catalog used, the advertised GPUs, the skipped devices and a provenance line."""
    from gpuabst import akash, catalog
    from gpuabst.environment import env_text
    from gpuabst.machine import Machine

    env = env_text(catalog.GPU_DB_ENV)
    db = args.gpu_db or env or None
    catalog.use(catalog.load_gpu_db(db) if db else None)
    cat = catalog.active()
    with Machine(args.fixture, backends=args.backend, call_timeout_s=call_timeout_s(args.timeout)) as m:
        snap = m.snapshot()
        source = "live hardware" if m.mode == "live" else \
            "replay of " + ", ".join(os.path.basename(f.path or "<fixture>") for f in m.fixtures)
    gpus, skipped = akash.advertised_gpus(snap.devices, cat)
    for s in skipped:
        if s.device_type == "gpu":
            print(f"gpuabst: note: device {s.index} ({s.vendor} {s.name or ''}".rstrip() +
                  f") is not advertised: {s.reason}", file=sys.stderr)
    line = f"gpuabst {__version__}, {snap.taken_at}, {source}, catalog: {cat.origin}"
    return snap, cat, gpus, skipped, line


def _emit(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from gpuabst.errors import GpuabstError
    from gpuabst.safe_io import write_text

    write_text(output, text, error=GpuabstError)


def cmd_labels(args: argparse.Namespace) -> int:
    from gpuabst import akash
    from gpuabst.errors import GpuabstError

    _, _, gpus, _, line = _read(args)
    labels = akash.node_labels(gpus, driver=not args.no_driver_labels)
    if labels.warnings and args.strict:
        raise GpuabstError(labels.warnings[0])
    for w in labels.warnings:
        print(f"gpuabst: warning: {w}", file=sys.stderr)
    if args.format == "nfd":
        expiry = None
        if args.expires_in is not None:
            expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=args.expires_in)
        text = akash.nfd_feature_file(labels, generated_by=line, expiry=expiry)
    else:
        text = labels.text()
    _emit(text, args.output)
    return 0


def cmd_attributes(args: argparse.Namespace) -> int:
    from gpuabst import akash

    _, _, gpus, _, line = _read(args)
    header = f"{line}\nAkash provider attributes for this node's GPUs: merge into provider.yaml"
    _emit(akash.attributes_yaml(gpus, header=header), args.output)
    return 0


def cmd_inventory(args: argparse.Namespace) -> int:
    from gpuabst import akash
    from gpuabst.serialize import to_dict

    snap, cat, gpus, skipped, _ = _read(args)
    if args.json:
        doc = {"schema": "gpuabst.akash-inventory", "schema_version": SCHEMA_VERSION, "gpuabst_version": __version__,
               "taken_at": snap.taken_at, "catalog": cat.origin, "gpus": akash.inventory_records(gpus),
               "details": akash.inventory_details(gpus), "skipped": to_dict(skipped)}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return 0
    if not gpus:
        print("No GPU to advertise.")
    for g in gpus:
        mark = " (derived)" if g.derived else ""
        print(f"{g.bus_id or '-':<13} {g.vendor:<7} {g.model:<14} {g.memory or '-':<7} {g.interface_raw or '-':<6} "
              f"{g.vendor_id or '-'}:{g.model_id or '-'}  {g.name or ''}{mark}")
    return 0
