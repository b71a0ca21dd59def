"""``gpuabst serve``: Prometheus metrics at /metrics and the node verdict at /healthz."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from gpuabst.cli.argtypes import port, seconds
from gpuabst.cli.commands.health import add_policy_options, machine_from_args, parse_tolerate, policy_from_args
from gpuabst.cli.sigterm import stopped_by_sigterm
from gpuabst.exporter import DEFAULT_PORT


def cmd_serve(args: argparse.Namespace) -> int:
    from gpuabst.errors import UsageError
    from gpuabst.exporter.prometheus import HealthCollector, MetricsServer

    policy = policy_from_args(args)
    with machine_from_args(args) as m:
        collector = HealthCollector(m, policy, min_interval_s=args.min_interval)
        try:
            server = MetricsServer(collector, args.host, args.port, tolerate=parse_tolerate(args.tolerate))
        except OSError as e:
            raise UsageError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
        print(f"gpuabst: serving {server.url}/metrics and {server.url}/healthz", file=sys.stderr, flush=True)
        try:
            with stopped_by_sigterm():  # a pod's stop: close the vendor library, exit 0
                server.serve_forever()
        finally:
            server.shutdown()
    return 0


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> dict[str, Callable[..., int]]:
    p = sub.add_parser("serve", help="Prometheus metrics at /metrics and the node verdict at /healthz",
                       description="Serves every health reading and verdict as Prometheus metrics. /healthz "
                                   "answers 200 when the node is ok (or only tolerated levels are present) and "
                                   "503 otherwise.")
    common(p)
    add_policy_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this host only)")
    p.add_argument("--port", type=port, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    p.add_argument("--min-interval", type=seconds, default=1.0, metavar="SECONDS",
                   help="read the GPUs at most this often; scrapes in between get the last reading (default 1)")
    p.add_argument("--tolerate", action="append", choices=["warn", "unknown"], default=None, metavar="LEVEL",
                   help="/healthz answers 200 for this level too (repeatable)")
    return {"serve": cmd_serve}
