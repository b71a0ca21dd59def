"""The Kubernetes manifests in docs/deploy/ parse, are well formed, ask for no more than they need, and
run gpuabst subcommands and options that exist (checked against the real argument parser)."""

from __future__ import annotations

import argparse
import contextlib
import io
import posixpath
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpuabst.cli.main import build_parser

DEPLOY = Path(__file__).resolve().parent.parent / "docs" / "deploy"
MANIFESTS = sorted(DEPLOY.glob("*.yaml"))
NFD_FEATURES_D = "/etc/kubernetes/node-feature-discovery/features.d"
ALLOWED_HOST_PATHS = {"/sys", NFD_FEATURES_D}
API_VERSIONS = {"Namespace": "v1", "DaemonSet": "apps/v1", "Service": "v1", "ServiceAccount": "v1"}
SHELL_OPERATORS = {";", "&&", "||", "|", "&", ">", ">>", "<", "(", ")"}


def _documents(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs, f"{path.name} holds no YAML document"
    for d in docs:
        assert isinstance(d, dict), f"{path.name}: a document is not a mapping"
    return docs


def _daemonsets(path: Path) -> list[dict[str, Any]]:
    return [d for d in _documents(path) if d["kind"] == "DaemonSet"]


def _invocations(container: dict[str, Any]) -> list[list[str]]:
    """Every gpuabst command line the container runs: its command and args directly, or each
    ``gpuabst ...`` inside a ``sh -c`` script (up to the next shell operator)."""
    argv = list(container.get("command", [])) + list(container.get("args", []))
    if argv and posixpath.basename(argv[0]) == "gpuabst":
        return [argv[1:]]
    if len(argv) == 3 and posixpath.basename(argv[0]) in ("sh", "bash") and argv[1] == "-c":
        found = []
        for line in argv[2].replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            tokens = list(lexer)
            for i, tok in enumerate(tokens):
                if tok == "gpuabst":
                    rest = tokens[i + 1:]
                    end = next((j for j, t in enumerate(rest) if t in SHELL_OPERATORS), len(rest))
                    found.append(rest[:end])
        return found
    return []


def _parse(argv: list[str]) -> argparse.Namespace:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"gpuabst {' '.join(argv)}: {err.getvalue().strip()}")


def _pod(ds: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = ds["spec"]["template"]["spec"]
    return spec


def _host_paths(pod: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["hostPath"]["path"] for v in pod.get("volumes", []) if "hostPath" in v}


def test_there_are_manifests_for_both_paths() -> None:
    assert {p.name for p in MANIFESTS} >= {"gpuabst-nfd.yaml", "gpuabst-exporter.yaml"}


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_documents_are_well_formed(path: Path) -> None:
    for doc in _documents(path):
        kind = doc.get("kind")
        assert kind in API_VERSIONS, f"{path.name}: unexpected kind {kind!r}"
        assert doc.get("apiVersion") == API_VERSIONS[kind]
        assert doc.get("metadata", {}).get("name")
    for ds in _daemonsets(path):
        assert ds["metadata"].get("namespace")
        selector = ds["spec"]["selector"]["matchLabels"]
        labels = ds["spec"]["template"]["metadata"]["labels"]
        assert selector and selector.items() <= labels.items(), "the selector must match the pod template"
        pod = _pod(ds)
        assert pod["containers"]
        volumes = {v["name"] for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            assert c.get("name") and c.get("image")
            for m in c.get("volumeMounts", []):
                assert m["name"] in volumes, f"{c['name']} mounts undefined volume {m['name']}"
                assert m["mountPath"].startswith("/")


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_only_the_access_gpuabst_needs(path: Path) -> None:
    for ds in _daemonsets(path):
        pod = _pod(ds)
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
        assert pod.get("automountServiceAccountToken") is False, "gpuabst does not talk to the API server"
        host = _host_paths(pod)
        for hp in host.values():
            assert hp in ALLOWED_HOST_PATHS or hp.startswith("/dev/nvidia"), f"hostPath {hp} is not needed"
        # NVIDIA devices come from the NVIDIA runtime class or from /dev/nvidia* hostPath devices
        assert pod.get("runtimeClassName") == "nvidia" or any(p.startswith("/dev/nvidia") for p in host.values())
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert not sc.get("privileged")
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            for m in c.get("volumeMounts", []):
                if host.get(m["name"]) == "/sys":
                    assert m.get("readOnly") is True, "/sys is mounted read-only"
                    assert env.get("GPUABST_SYSFS_ROOT") == m["mountPath"], "the PCI backend reads the host's /sys"
            assert "limits" in c.get("resources", {})


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_gpuabst_command_lines_exist(path: Path) -> None:
    subcommands = {a.dest: set(a.choices) for a in build_parser()._actions
                   if isinstance(a, argparse._SubParsersAction)}["command"]
    for ds in _daemonsets(path):
        runs = [argv for c in _pod(ds)["containers"] for argv in _invocations(c)]
        assert runs, f"{ds['metadata']['name']} runs no gpuabst command"
        for argv in runs:
            assert argv and argv[0] in subcommands, f"gpuabst has no subcommand {argv[:1]}"
            _parse(argv)


def test_nfd_daemonset_writes_a_feature_file_into_nfds_folder() -> None:
    (ds,) = _daemonsets(DEPLOY / "gpuabst-nfd.yaml")
    pod = _pod(ds)
    (c,) = pod["containers"]
    (argv,) = _invocations(c)
    args = _parse(argv)
    assert (args.command, args.format) == ("labels", "nfd")
    folder, name = posixpath.split(args.output)
    assert not name.startswith("."), "NFD ignores hidden files"
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert folder in mounts and not mounts[folder].get("readOnly")
    assert _host_paths(pod)[mounts[folder]["name"]] == NFD_FEATURES_D
    assert args.expires_in and args.expires_in > 300, "the labels expire if the writer stops, not between runs"


def test_exporter_daemonset_is_scraped_on_the_port_it_serves() -> None:
    (ds,) = _daemonsets(DEPLOY / "gpuabst-exporter.yaml")
    annotations = ds["spec"]["template"]["metadata"]["annotations"]
    (c,) = _pod(ds)["containers"]
    (argv,) = _invocations(c)
    args = _parse(argv)
    assert args.command == "serve"
    assert args.host not in ("127.0.0.1", "localhost", "::1"), "Prometheus scrapes the pod's address"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["metrics"] == int(args.port)
    assert c["readinessProbe"]["httpGet"]["path"] == annotations["prometheus.io/path"]
    assert c["securityContext"]["runAsNonRoot"] is True
