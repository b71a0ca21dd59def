"""``gpuabst import nvidia-smi-text``: ``nvidia-smi -q`` text (capture bundles) turned into an NVML fixture.

Input is either a capture bundle (sections headed by a ``#`` rule naming the command, such as
``# $ nvidia-smi -q``, ``# $ nvidia-smi -L``, ``# $ nvidia-smi nvlink -s``, idle and under load) or
plain ``nvidia-smi -q`` output. From a bundle:

- the first ``nvidia-smi -q`` section (idle) is what ``snapshot()`` replays, and a second one
  (under load) is recorded as the next poll: ``poll()`` replays its dynamic values;
- ``nvidia-smi -L`` gives the MIG devices' profile names (``MIG 3g.40gb Device 0``) and UUIDs,
  recorded as nvmlDeviceGetName (``NVIDIA H100 80GB HBM3 MIG 3g.40gb``, as NVML names a MIG
  device) and nvmlDeviceGetUUID of the MIG device handle;
- ``nvidia-smi nvlink -s`` gives the NVLink link states;
- the ``--query-gpu`` CSV gives the compute capability (``compute_cap``), which ``-q`` does not
  print; ``--query-retired-pages`` gives retired page addresses.

Each printed value becomes the NVML call NvmlBackend makes for it, with the same arguments (see
docs/importers/nvidia-smi-text.md). "N/A" / "[Not Supported]" become NVML_ERROR_NOT_SUPPORTED with
a note; a value the text does not hold is not recorded (it replays as ``not_recorded``).

The text is untrusted: the file size and line length are capped, parsing is line by line with no
backtracking regular expressions, and every problem (not a bundle, binary junk, a section cut
off, an unparseable or out-of-range value) is an ImportFormatError naming the file and the line.

Several files: each is a run on the same machine; their ``-q`` logs are replayed in order (the
first on ``snapshot()``, each later one on the next ``poll()``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any

from gpuabst import __version__
from gpuabst.errors import ImportFormatError
from gpuabst.fixtures.builder import FixtureBuilder
from gpuabst.fixtures.format import Fixture
from gpuabst.pci import normalize_bus_id
from gpuabst.safe_io import read_capped
from gpuabst_nvml import constants as C
from gpuabst_nvml import smi_record as R
from gpuabst_nvml import synth as S
from gpuabst_nvml.synth import NvmlWriter, Unsupported

TOOL = "nvidia-smi -q (text bundle)"
MAX_BYTES = 16 * 1024 * 1024
"""Largest file accepted (a bundle of one GPU is about 200 KB; an 8-GPU one a few MB)."""
MAX_LINES = 400_000
"""Most lines accepted (a one-GPU bundle has about 2,500; ``-q`` prints about 300 per GPU), which
bounds the memory a file of many short lines can take."""
MAX_LINE = 1024
"""Longest line accepted inside a ``-q`` log (nvidia-smi's lines are under 200 characters)."""
MAX_GPUS = 1024
MAX_NODES = MAX_LINES
MAX_MIG_SLOTS = 64
RULE_MIN = 20
"""A bundle's section rule is a line of at least this many ``#``."""
BANNER = "NVSMI LOG"


class _Fail(Exception):
    """A problem in one file, before the file name is added."""


# --- the file and its sections -------------------------------------------------------------------

class _Section:
    """One bundle section: its label (``idle :: query (-q)``), command and content lines."""

    __slots__ = ("command", "first_line", "label", "lines")

    def __init__(self, label: str, command: str, first_line: int) -> None:
        self.label = label
        self.command = command
        self.first_line = first_line
        """1-based file line number of ``lines[0]``."""
        self.lines: list[str] = []


def _decode(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # PowerShell's `>` writes UTF-16 with a BOM
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError as e:
            raise _Fail(f"not valid UTF-16 text ({e.reason} at byte {e.start})") from None
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise _Fail(f"not UTF-8 text ({e.reason} at byte {e.start}); is it nvidia-smi -q output?") from None
    if "\x00" in text:
        raise _Fail("holds NUL bytes: binary data, not nvidia-smi -q text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _is_rule(line: str) -> bool:
    s = line.rstrip()
    return len(s) >= RULE_MIN and s.count("#") == len(s)


def _sections(lines: list[str]) -> list[_Section]:
    """Split a bundle at its section headers: a rule, one to eight ``#`` lines, a rule."""
    out: list[_Section] = []
    current: _Section | None = None
    i, n = 0, len(lines)
    while i < n:
        if _is_rule(lines[i]):
            j = i + 1
            header: list[str] = []
            while j < n and j - i <= 8 and lines[j].startswith("#") and not _is_rule(lines[j]):
                header.append(lines[j].lstrip("#").strip())
                j += 1
            if header and j < n and _is_rule(lines[j]):
                command = next((h[1:].strip() for h in header if h.startswith("$")), "")
                label = next((h for h in header if not h.startswith("$")), "")
                current = _Section(label, command, j + 2)
                out.append(current)
                i = j + 1
                continue
        if current is not None:
            current.lines.append(lines[i])
        i += 1
    return out


class _Bundle:
    """What one file holds: its ``-q`` logs (in order) and the sections that complement them."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        if text.count("\n") > MAX_LINES:
            raise _Fail(f"more than {MAX_LINES} lines; not an nvidia-smi -q capture")
        lines = text.split("\n")
        sections = _sections(lines)
        self.header: dict[str, str] = {}
        if sections and not sections[0].command:
            for line in sections[0].lines:
                key, sep, value = line.partition(":")
                if sep and not key.startswith("#") and key.strip() and len(line) < MAX_LINE:
                    self.header[key.strip().lower()] = value.strip()
        self.logs = [s for s in sections if s.command == "nvidia-smi -q"]
        self.plain = False
        if not sections:
            first = next((ln for ln in lines if ln.strip()), "")
            if BANNER in first:  # plain `nvidia-smi -q` output, not a bundle
                plain = _Section("nvidia-smi -q", "nvidia-smi -q", 1)
                plain.lines = lines
                self.logs = [plain]
                self.plain = True
        if not self.logs:
            raise _Fail("no `nvidia-smi -q` section and no NVSMI LOG banner: not an nvidia-smi -q capture")

        def find(prefix: str) -> list[_Section]:
            return [s for s in sections if s.command.startswith(prefix)]

        self.listing = next(iter(find("nvidia-smi -L")), None)
        self.nvlink = next(iter(find("nvidia-smi nvlink -s")), None)
        self.version = next(iter(find("nvidia-smi --version")), None)
        self.query_gpu = find("nvidia-smi --query-gpu=")
        self.retired = find("nvidia-smi --query-retired-pages=")


def read_bundle(path: str) -> _Bundle:
    """A capture bundle (or plain ``nvidia-smi -q`` output); ImportFormatError otherwise."""
    name = os.path.basename(path)
    raw = read_capped(path, MAX_BYTES, "an nvidia-smi -q capture", error=ImportFormatError, label=name)
    try:
        if not raw.strip():
            raise _Fail("empty file")
        return _Bundle(name, _decode(raw))
    except _Fail as e:
        raise ImportFormatError(f"{name}: {e}") from None


# --- the indented `nvidia-smi -q` log as a tree --------------------------------------------------

class _Node:
    """One ``Key : value`` line (or section title) of a ``-q`` log, with the lines indented under it."""

    __slots__ = ("children", "key", "line", "value")

    def __init__(self, key: str, value: str | None, line: int) -> None:
        self.key = key
        self.value = value
        self.line = line
        self.children: list[_Node] = []

    def find(self, path: str) -> _Node | None:
        """The first node at ``a/b/c`` (keys compared without case)."""
        node: _Node | None = self
        for part in path.split("/"):
            want = part.lower()
            node = next((c for c in node.children if c.key.lower() == want), None) if node else None
        return node

    def findall(self, key: str) -> list[_Node]:
        want = key.lower()
        return [c for c in self.children if c.key.lower() == want]

    def walk(self) -> Iterator[_Node]:
        """Every node under this one, depth first (iteratively: no recursion limit to hit)."""
        stack = list(reversed(self.children))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


_GPU_HEADER = re.compile(r"GPU ([0-9A-Fa-f]{1,8}:[0-9A-Fa-f]{1,2}:[0-9A-Fa-f]{1,2}\.[0-7])")


def _parse_log(section: _Section) -> _Node:
    """The tree of a ``-q`` log; GPU blocks are root children keyed ``GPU`` with the bus id as value."""
    root = _Node("", None, section.first_line)
    stack: list[tuple[int, _Node]] = [(-1, root)]
    banner = False
    count = 0
    for n, raw in enumerate(section.lines):
        line_no = section.first_line + n
        line = raw.rstrip()
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            raise _Fail(f"line {line_no}: {len(line)} characters long; not nvidia-smi -q output")
        line = line.expandtabs(4)
        body = line.lstrip(" ")
        if body.startswith("=") and BANNER in body:
            banner = True
            continue
        indent = len(line) - len(body)
        gpu = _GPU_HEADER.fullmatch(body)
        if gpu and indent == 0:
            key, value = "GPU", gpu.group(1)
        else:
            cut = body.find(" :")
            if cut < 0 and body.endswith(":"):
                cut = len(body) - 1
            if cut >= 0:
                key, value = body[:cut].strip(), body[cut + 2:].strip() if cut + 2 <= len(body) else ""
            else:
                key, value = body.strip(), None
        count += 1
        if count > MAX_NODES:
            raise _Fail(f"more than {MAX_NODES} lines in one -q log")
        while stack[-1][0] >= indent:
            stack.pop()
        node = _Node(key, value, line_no)
        stack[-1][1].children.append(node)
        stack.append((indent, node))
    if not banner:
        raise _Fail(f"the `nvidia-smi -q` section at line {section.first_line} has no NVSMI LOG banner")
    return root


def _gpu_blocks(root: _Node, section: _Section) -> list[_Node]:
    gpus = root.findall("GPU")
    if len(gpus) > MAX_GPUS:
        raise _Fail(f"{len(gpus)} GPU blocks; at most {MAX_GPUS} are accepted")
    for g in gpus:
        # every GPU block of `nvidia-smi -q` ends with its Processes entry (Capabilities follows on 590+)
        if g.find("Processes") is None:
            raise _Fail(f"the GPU {g.value} block at line {g.line} ends before its Processes entry: "
                        "the `nvidia-smi -q` section is truncated")
        if g.find("Product Name") is None:
            raise _Fail(f"the GPU {g.value} block at line {g.line} has no Product Name")
    if not gpus:
        attached = root.find("Attached GPUs")
        if attached is None:
            raise _Fail(f"the `nvidia-smi -q` section at line {section.first_line} is truncated "
                        "(no Attached GPUs, no GPU block)")
    return gpus


# --- the values at the top of a log --------------------------------------------------------------

def _driver_text(text: str) -> str:
    """A driver version as printed, less any trailing remark (``610.10 (deprecated)``)."""
    m = re.match(r"\d{1,4}(?:\.\d{1,4}){1,3}", text.strip())
    return m.group(0) if m else S.version_text(text)


def _cuda_text(text: str) -> int:
    m = re.match(r"\d{1,3}\.\d{1,2}", text.strip())
    return S.cuda_version(m.group(0) if m else text)


def _root_get(root: _Node, keys: tuple[str, ...], convert: Callable[[str], Any]) -> Any:
    """The first of ``keys`` (newest name first) printed at the top of the log with a usable value."""
    fallback: Any = None
    for key in keys:
        node = root.find(key)
        if node is None or node.value is None:
            continue
        try:
            v = S.parse(node.value, convert)
        except ValueError as e:
            raise _Fail(f"line {node.line}: {key}: {e}") from None
        if v is not None and not isinstance(v, Unsupported):
            return v
        fallback = fallback or v
    return fallback


# --- what the other sections of a bundle add -----------------------------------------------------

class _Extras:
    """Per-GPU facts from the sections beside ``-q``: MIG listing, NVLink, compute capability."""

    def __init__(self, bundle: _Bundle) -> None:
        self.mig: dict[int, dict[int, tuple[str, str]]] = {}
        """GPU index -> MIG device index -> (profile, UUID), from ``nvidia-smi -L``."""
        self.nvlink: dict[int, Any] = {}
        """GPU index -> list of link states (1 active, 0 inactive), or Unsupported."""
        self.compute_cap: dict[str, Any] = {}
        """Normalised bus id -> [major, minor], from the first ``--query-gpu`` CSV."""
        self.retired: list[dict[str, dict[int, list[int]]]] = []
        """Per phase: normalised bus id -> cause -> addresses, from ``--query-retired-pages``."""
        self.notes: list[str] = []
        if bundle.listing is not None:
            self._listing(bundle.listing)
        if bundle.nvlink is not None:
            self._nvlinks(bundle.nvlink)
        if bundle.query_gpu:
            self._query_gpu(bundle.query_gpu[0])
        for sec in bundle.retired:
            self.retired.append(self._retired(sec))

    def _listing(self, sec: _Section) -> None:
        gpu: int | None = None
        for n, raw in enumerate(sec.lines):
            line = raw.strip()
            if not line or len(line) > MAX_LINE:
                continue
            m = re.fullmatch(r"GPU (\d{1,4}): .*\(UUID: [^()]*\)", line)
            if m:
                gpu = int(m.group(1))
                continue
            m = re.fullmatch(r"MIG (\S{1,64}) +Device +(\d{1,3}): \(UUID: ([^()\s]{1,80})\)", line)
            if m and gpu is not None:
                slot = int(m.group(2))
                if slot >= MAX_MIG_SLOTS:
                    raise _Fail(f"line {sec.first_line + n}: MIG device index {slot} is out of range")
                self.mig.setdefault(gpu, {})[slot] = (m.group(1), m.group(3))

    def _nvlinks(self, sec: _Section) -> None:
        gpu: int | None = None
        for raw in sec.lines:
            line = raw.strip()
            if not line or len(line) > MAX_LINE:
                continue
            m = re.fullmatch(r"GPU (\d{1,4}): .*", line)
            if m:
                gpu = int(m.group(1))
                continue
            if gpu is None:
                continue
            m = re.fullmatch(r"Link (\d{1,2}): (.{1,80})", line)
            if m:
                links = self.nvlink.setdefault(gpu, [])
                if isinstance(links, list) and int(m.group(1)) == len(links):  # links in order 0, 1, ...
                    links.append(0 if "inactive" in m.group(2).lower() else C.FEATURE_ENABLED)
            elif "does not have or support nvlink" in line.lower():
                self.nvlink[gpu] = Unsupported(f"nvidia-smi nvlink -s printed {line[:80]!r}")

    def _query_gpu(self, sec: _Section) -> None:
        for row in _csv(sec, self.notes):
            bus, cap = row.get("pci.bus_id"), row.get("compute_cap")
            if not bus or cap is None:
                continue
            try:
                key = normalize_bus_id(bus)
            except ValueError:
                continue
            m = re.fullmatch(r"(\d{1,2})\.(\d{1,2})", cap.strip())
            if m:
                self.compute_cap[key] = [int(m.group(1)), int(m.group(2))]
            else:
                try:
                    v = S.parse(cap, lambda t: t)
                except ValueError:
                    v = None
                if isinstance(v, Unsupported):
                    self.compute_cap[key] = v

    def _retired(self, sec: _Section) -> dict[str, dict[int, list[int]]]:
        out: dict[str, dict[int, list[int]]] = {}
        causes = {"single bit ecc": C.RETIREMENT_CAUSE_SINGLE_BIT, "double bit ecc": C.RETIREMENT_CAUSE_DOUBLE_BIT}
        for row in _csv(sec, self.notes):
            cause = causes.get((row.get("retired_pages.cause") or "").strip().lower())
            try:
                bus = normalize_bus_id(row.get("gpu_bus_id") or "")
                address = S.parse(row.get("retired_pages.address"), S.hex64)
            except ValueError:
                continue
            if cause is not None and isinstance(address, int):
                out.setdefault(bus, {}).setdefault(cause, []).append(address)
        return out


def _csv(sec: _Section, notes: list[str]) -> list[dict[str, str]]:
    """The rows of an nvidia-smi ``--format=csv`` section, by header name without its ``[unit]``."""
    lines = [ln for ln in sec.lines if ln.strip()]
    if not lines or len(lines[0]) > 64 * MAX_LINE:
        return []
    header = [re.sub(r"\s*\[[^\]]{0,16}\]$", "", h.strip()) for h in lines[0].split(",")]
    rows = []
    for n, line in enumerate(lines[1:]):
        if len(line) > 64 * MAX_LINE:
            continue
        cells = [c.strip() for c in line.split(", ")]
        if len(cells) != len(header):
            notes.append(f"line {sec.first_line + n + 1}: a {sec.command.split('=')[0]} row has {len(cells)} "
                         f"fields for {len(header)} columns; it is ignored")
            continue
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


# --- one GPU: smi_record reads it by logical name and writes its calls ---------------------------

_POWER = ("GPU Power Readings", "Power Readings")
_ECC_PARTS = {
    "single_bit": "Single Bit", "double_bit": "Double Bit", "sram_correctable": "SRAM Correctable",
    "dram_correctable": "DRAM Correctable", "sram_uncorrectable": "SRAM Uncorrectable",
    "sram_uncorrectable_parity": "SRAM Uncorrectable Parity",
    "sram_uncorrectable_secded": "SRAM Uncorrectable SEC-DED", "dram_uncorrectable": "DRAM Uncorrectable"}
_CLOCK_NAMES = {"graphics": "Graphics", "sm": "SM", "mem": "Memory"}

PATHS: dict[str, str | tuple[str, ...]] = {
    "pci.bus_id": "PCI/Bus Id", "pci.domain": "PCI/Domain", "pci.bus": "PCI/Bus", "pci.device": "PCI/Device",
    "pci.device_id": "PCI/Device Id", "pci.sub_system_id": "PCI/Sub System Id",
    "ecc_mode.current": "ECC Mode/Current", "ecc_mode.pending": "ECC Mode/Pending",
    "mig_mode.current": "MIG Mode/Current", "mig_mode.pending": "MIG Mode/Pending",
    "power.min_limit": R.power_paths(_POWER, "Min Power Limit"),
    "power.max_limit": R.power_paths(_POWER, "Max Power Limit"),
    # "Requested Power Limit" (535+) is nvmlDeviceGetPowerManagementLimit; older drivers print "Power Limit"
    "power.limit": R.power_paths(_POWER, "Requested Power Limit", "Power Limit"),
    "power.default_limit": R.power_paths(_POWER, "Default Power Limit"),
    "power.enforced_limit": R.power_paths(_POWER, "Current Power Limit", "Enforced Power Limit"),
    "power.draw": R.power_paths(_POWER, "Power Draw"),
    "power.average_draw": R.power_paths(_POWER, "Average Power Draw"),
    "power.instant_draw": R.power_paths(_POWER, "Instantaneous Power Draw"),
    "pcie.max_generation": "PCI/GPU Link Info/PCIe Generation/Max",
    "pcie.max_width": "PCI/GPU Link Info/Link Width/Max",
    "pcie.generation": "PCI/GPU Link Info/PCIe Generation/Current",
    "pcie.width": "PCI/GPU Link Info/Link Width/Current",
    "compute_mode": "Compute Mode", "persistence_mode": "Persistence Mode",
    **{f"clocks.max.{c}": f"Max Clocks/{name}" for c, name in _CLOCK_NAMES.items()},
    **{f"clocks.{c}": f"Clocks/{name}" for c, name in _CLOCK_NAMES.items()},
    **{f"bar1.{f.lower()}": f"BAR1 Memory Usage/{f}" for f in ("Total", "Used", "Free")},
    # absolute thresholds only: the "T.Limit" lines of 550+ are offsets from T.Limit, not what
    # nvmlDeviceGetTemperatureThreshold returns, so they are not recorded
    "temperature.slowdown": "Temperature/GPU Slowdown Temp",
    "temperature.shutdown": "Temperature/GPU Shutdown Temp",
    "temperature.gpu_max": "Temperature/GPU Max Operating Temp",
    "temperature.gpu": "Temperature/GPU Current Temp",
    "name": "Product Name", "uuid": "GPU UUID", "serial": "Serial Number",
    "board_part_number": ("Board Part Number", "GPU Part Number"),
    "brand": "Product Brand", "architecture": "Product Architecture", "vbios_version": "VBIOS Version",
    "utilization.gpu": "Utilization/GPU", "utilization.memory": "Utilization/Memory",
    "remapped_rows": "Remapped Rows", "remapped_rows.correctable": "Remapped Rows/Correctable Error",
    "remapped_rows.uncorrectable": "Remapped Rows/Uncorrectable Error",
    "remapped_rows.pending": "Remapped Rows/Pending",
    "remapped_rows.failure": "Remapped Rows/Remapping Failure Occurred",
    "fan_speed": "Fan Speed", "performance_state": "Performance State",
    **R.ecc_paths("ECC Errors", {"volatile": "Volatile", "aggregate": "Aggregate"}, _ECC_PARTS, "Total"),
    "retired.single_bit.count": "Retired Pages/Single Bit ECC",
    "retired.double_bit.count": "Retired Pages/Double Bit ECC",
    "retired.pending": ("Retired Pages/Pending Page Blacklist", "Retired Pages/Pending"),
    # a MIG device's values, under its MIG Device block
    "mig.gpu_instance_id": "GPU Instance ID", "mig.compute_instance_id": "Compute Instance ID",
    "mig.multiprocessorCount": "Device Attributes/Shared/Multiprocessor count",
    "mig.sharedCopyEngineCount": "Device Attributes/Shared/Copy Engine count",
    "mig.sharedEncoderCount": "Device Attributes/Shared/Encoder count",
    "mig.sharedDecoderCount": "Device Attributes/Shared/Decoder count",
    "mig.sharedOfaCount": "Device Attributes/Shared/OFA count",
    "mig.sharedJpegCount": "Device Attributes/Shared/JPG count",
}
"""Logical name (smi_record) -> key path in a GPU block; docs/importers/nvidia-smi-text.md lists the calls."""

_REASON_BITS: dict[str, int] = {
    "idle": 0x1, "applications clocks setting": 0x2, "sw power cap": 0x4, "hw slowdown": 0x8,
    "sync boost": 0x10, "sw thermal slowdown": 0x20, "hw thermal slowdown": 0x40,
    "hw power brake slowdown": 0x80, "display clock setting": 0x100,
}
"""``Clocks Event Reasons`` lines as nvidia-smi prints them -> the NVML reason bit."""


class _Gpu(R.SmiRecord):
    """Reads one GPU block (with what the bundle's other sections add); errors name the line and key."""

    paths = PATHS
    label = "GPU"
    uuid_label = "UUID"

    def __init__(self, node: _Node, index: int, masked: list[str], extras: _Extras,
                 retired: dict[str, dict[int, list[int]]]) -> None:
        super().__init__(index, masked)
        self.node = node
        self.extras = extras
        self.retired = retired
        """Normalised bus id -> cause -> addresses, from this phase's ``--query-retired-pages``."""

    def _find(self, path: str, base: _Node | None = None) -> _Node | None:
        return (self.node if base is None else base).find(path)

    def _has_children(self, node: _Node) -> bool:
        return bool(node.children)

    def _text(self, path: str) -> str | None:
        node = self.node.find(path)
        return None if node is None or node.value is None else node.value

    def _get(self, path: str, convert: Callable[[str], Any], base: _Node | None = None) -> Any:
        node = (self.node if base is None else base).find(path)
        if node is None or node.value is None:
            return None
        try:
            return S.parse(node.value, convert)
        except ValueError as e:
            raise _Fail(f"line {node.line}: {path}: {e}") from None

    def error(self, message: str) -> Exception:
        return _Fail(message)

    def header_bus_id(self) -> str | None:
        return self.node.value

    def bus_id_error(self, text: str) -> Exception:
        return _Fail(f"line {self.node.line}: GPU {self.index}: no valid PCI bus id ({text[:40]!r})")

    def compute_capability(self) -> Any:
        """From the bundle's ``--query-gpu`` CSV (``compute_cap``)."""
        return self.extras.compute_cap.get(normalize_bus_id(self.bus))

    def nvlink_states(self) -> Any:
        """From the bundle's ``nvidia-smi nvlink -s``."""
        return self.extras.nvlink.get(self.index)

    def memory_info(self) -> tuple[bool, Any]:
        v2 = self.node.find("FB Memory Usage/Reserved") is not None
        return v2, self._memory(None, "FB Memory Usage", v2=True)

    def mig_memory(self, block: _Node) -> Any:
        section = "Shared FB Memory Usage" if block.find("Shared FB Memory Usage") is not None else "FB Memory Usage"
        return self._memory(block, section, v2=False)

    def _memory(self, base: _Node | None, section: str, *, v2: bool) -> Any:
        """The v2 structure when a Reserved size is printed (v2), else the v1 one with the sizes printed."""
        total, used, free, reserved = (self._get(f"{section}/{f}", S.mib_bytes, base)
                                       for f in ("Total", "Used", "Free", "Reserved"))
        if v2 and reserved is not None:
            out = S.combine(total, reserved, used, free)
            return R.memory_v2(*out) if isinstance(out, list) else out
        return R.memory_v1(total, used, free)

    def power_usage(self) -> Any:
        """nvmlDeviceGetPowerUsage: "Power Draw" before 570; from 570 the average draw, or the
        instantaneous one where the average is N/A. NVML documents that this call returns the 1 s
        average on Ampere (except GA100) and newer, and instantaneous power on GA100 and older, which
        is where nvidia-smi prints the average as N/A; the bundles' --query-gpu ``power.draw`` agrees
        (the average on H100, the instantaneous draw on a Turing GeForce)."""
        outcomes = [self.get(n, S.milliwatts) for n in ("power.draw", "power.average_draw", "power.instant_draw")]
        value = next((o for o in outcomes if isinstance(o, int)), None)
        return value if value is not None else next((o for o in outcomes if o is not None), None)

    def clock_reasons(self) -> tuple[str, Any] | None:
        """The clocks event (throttle) reason mask, under the NVML call the driver of the capture had."""
        for section, fn in (("Clocks Event Reasons", "nvmlDeviceGetCurrentClocksEventReasons"),
                            ("Clocks Throttle Reasons", "nvmlDeviceGetCurrentClocksThrottleReasons")):
            sec = self.node.find(section)
            if sec is None:
                continue
            if sec.value:  # the whole section printed as one sentinel
                return fn, self._get(section, S.integer)
            states = ((_state(section, child), _REASON_BITS.get(child.key.lower()),
                       f"line {child.line}: {section}/{child.key}") for child in sec.walk() if child.value is not None)
            return fn, R.reason_mask(states, _Fail)
        return None

    def retired_addresses(self, cause: int) -> list[int]:
        """From the phase's ``--query-retired-pages`` CSV."""
        return self.retired.get(normalize_bus_id(self.bus), {}).get(cause, [])

    def mig_slots(self) -> list[tuple[int, _Node | None]]:
        """The MIG devices ``-q`` printed (index, instance ids, attributes, memory) and ``-L`` listed."""
        blocks = self.node.findall("MIG Device")
        group = self.node.find("MIG Devices")
        if group is not None:
            blocks += group.findall("MIG Device")
        slots: dict[int, _Node | None] = dict.fromkeys(self.extras.mig.get(self.index, {}))
        for pos, md in enumerate(blocks):
            idx = self._get("Index", S.integer, md)
            slot = idx if isinstance(idx, int) else pos
            if slot >= MAX_MIG_SLOTS:
                raise _Fail(f"line {md.line}: MIG device index {slot} is out of range")
            slots[slot] = md
        return [(slot, slots[slot]) for slot in sorted(slots)]

    def write_mig_identity(self, w: NvmlWriter, mh: dict[str, str], slot: int, block: _Node | None,
                           parent_name: str | None) -> None:
        """nvmlDeviceGetName (parent's name + ``-L``'s profile) and nvmlDeviceGetUUID, from ``-L``."""
        listed = self.extras.mig.get(self.index, {})
        profile, uuid = listed.get(slot, (None, None))
        if profile and parent_name:
            w.value("nvmlDeviceGetName", mh, value=f"{parent_name} MIG {profile}",
                    note="parent's Product Name + the profile that nvidia-smi -L printed")
        if uuid and [u for _, u in listed.values()].count(uuid) > 1:
            self.masked.append(f"GPU {self.index} MIG device {slot} UUID (the same as another's: masked, "
                               "so not recorded)")
        elif uuid:
            try:
                w.put("nvmlDeviceGetUUID", mh, value=S.parse(uuid, S.name_text))
            except ValueError as e:
                raise _Fail(f"nvidia-smi -L: GPU {self.index} MIG device {slot} UUID: {e}") from None


def _state(section: str, child: _Node) -> Any:
    """One clocks event reason line's state (``Active``), Unsupported or None."""
    try:
        return S.parse(child.value, lambda t: t)
    except ValueError as e:
        raise _Fail(f"line {child.line}: {section}/{child.key}: {e}") from None


# --- files -> fixture ----------------------------------------------------------------------------

class _Log:
    """One parsed ``-q`` log with the bundle it came from and its phase (0 idle, 1 load...)."""

    def __init__(self, bundle: _Bundle, section: _Section, phase: int) -> None:
        self.bundle = bundle
        self.section = section
        self.phase = phase
        self.root = _parse_log(section)
        self.gpus = _gpu_blocks(self.root, section)

    def identity(self) -> list[str]:
        return [(g.value or "").lower() for g in self.gpus]


def _versions(bundle: _Bundle) -> dict[str, str]:
    """``nvidia-smi --version``: NVML, driver and CUDA versions (lower-case keys)."""
    out: dict[str, str] = {}
    if bundle.version is None:
        return out
    for line in bundle.version.lines:
        key, sep, value = line.partition(":")
        if sep and len(line) < MAX_LINE:
            out[key.strip().lower()] = value.strip()
    return out


def import_files(paths: list[str]) -> Fixture:
    """NVML fixture of the ``nvidia-smi -q`` text in ``paths`` (unscrubbed; the CLI scrubs it)."""
    if not paths:
        raise ImportFormatError("nvidia-smi-text: no file given")
    bundles = [read_bundle(p) for p in paths]
    logs: list[_Log] = []
    extras: dict[int, _Extras] = {}
    for b in bundles:
        try:
            extras[id(b)] = _Extras(b)
            for phase, sec in enumerate(b.logs):
                logs.append(_Log(b, sec, phase))
        except _Fail as e:
            raise ImportFormatError(f"{b.name}: {e}") from None
    first = logs[0]
    for log in logs[1:]:
        if log.identity() != first.identity():
            raise ImportFormatError(
                f"{log.bundle.name}: the `nvidia-smi -q` at line {log.section.first_line} shows other GPUs "
                f"than {first.bundle.name} (bus ids differ); a fixture is one machine")
    try:
        driver = _root_get(first.root, ("KMD Version", "Driver Version"), _driver_text)
        cuda = _root_get(first.root, ("CUDA UMD Version", "CUDA Version"), _cuda_text)
        versions = _versions(first.bundle)
        if driver is None and versions.get("driver version"):
            driver = S.parse(versions["driver version"], _driver_text)
        if cuda is None and versions.get("cuda version"):
            cuda = S.parse(versions["cuda version"], _cuda_text)
    except (_Fail, ValueError) as e:
        raise ImportFormatError(f"{first.bundle.name}: {e}") from None
    names = [b.name for b in bundles]
    provenance: dict[str, Any] = {
        "kind": "import", "tool": TOOL, "source": names[0] if len(names) == 1 else names,
        "driver_version": driver if isinstance(driver, str) else None,
        "imported_by": f"gpuabst import nvidia-smi-text {__version__}",
    }
    if versions.get("nvml version"):
        provenance["nvml_version"] = versions["nvml version"][:32]
    for key in ("collected_at", "masked", "load"):
        if first.bundle.header.get(key):
            provenance[key] = first.bundle.header[key][:120]
    if len(logs) > 1:
        provenance["polls"] = [f"{log.bundle.name} line {log.section.first_line}: {log.section.label}"[:160]
                               for log in logs]
        provenance["note"] = ("snapshot() replays the first `nvidia-smi -q` log, each poll() the next one "
                              "(in a bundle: idle, then under load)")
    builder = FixtureBuilder(provenance)
    provenance = builder.provenance  # the builder keeps its own copy: what is noted below goes there
    log_writer = builder.backend("nvml", library={"name": "nvidia-ml-py", "version": None},
                           driver_version=driver if isinstance(driver, str) else None)
    w = NvmlWriter(log_writer)
    masked: list[str] = []
    for n, log in enumerate(logs):
        ex = extras[id(log.bundle)]
        retired = ex.retired[log.phase] if log.phase < len(ex.retired) else {}
        try:
            if n == 0:
                _check_attached(log, provenance)
                w.system(driver_version=driver, cuda_version=cuda, count=len(log.gpus))
            uuids = [(g.find("GPU UUID") or _Node("", None, 0)).value or "" for g in log.gpus]
            shared = {u for u in uuids if u and uuids.count(u) > 1}
            for i, node in enumerate(log.gpus):
                R.write_gpu(w, _Gpu(node, i, masked if n == 0 else [], ex, retired), shared)
        except _Fail as e:
            raise ImportFormatError(f"{log.bundle.name}: {e}") from None
    log_writer.result("nvmlShutdown", value=None)
    notes = [n for ex in extras.values() for n in ex.notes]
    if masked:
        provenance["masked_ids"] = masked
    if notes:
        provenance["ignored"] = notes[:20]
    return builder.build()


def _check_attached(log: _Log, provenance: dict[str, Any]) -> None:
    node = log.root.find("Attached GPUs")
    if node is None or node.value is None:
        return
    try:
        attached = S.parse(node.value, S.integer)
    except ValueError as e:
        raise _Fail(f"line {node.line}: Attached GPUs: {e}") from None
    if not isinstance(attached, int):
        return
    if attached > 0 and not log.gpus:
        raise _Fail(f"line {node.line}: Attached GPUs says {attached} but no GPU block follows: the "
                    "`nvidia-smi -q` section is truncated")
    if attached > len(log.gpus):
        provenance["attached_gpus"] = attached
        provenance["trimmed"] = (f"Attached GPUs says {attached} but the log holds {len(log.gpus)} GPU "
                                 "block(s); only those are recorded")
    elif attached < len(log.gpus):
        raise _Fail(f"line {node.line}: Attached GPUs says {attached} but the log holds {len(log.gpus)} GPU blocks")
