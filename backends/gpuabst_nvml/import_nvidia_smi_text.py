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
from gpuabst.fixtures.builder import FixtureBuilder, struct
from gpuabst.fixtures.format import Fixture
from gpuabst.pci import normalize_bus_id
from gpuabst_nvml import constants as C
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
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ImportFormatError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        if len(raw) > MAX_BYTES:
            raise _Fail(f"larger than {MAX_BYTES // (1024 * 1024)} MiB; not an nvidia-smi -q capture")
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


# --- reading values ------------------------------------------------------------------------------

class _Gpu:
    """Reads one GPU block; ``get`` parses a value, naming the line and key in errors."""

    def __init__(self, node: _Node, index: int) -> None:
        self.node = node
        self.index = index

    def text(self, path: str, base: _Node | None = None) -> str | None:
        node = (base or self.node).find(path)
        return None if node is None or node.value is None else node.value

    def get(self, path: str, convert: Callable[[str], Any], base: _Node | None = None) -> Any:
        node = (base or self.node).find(path)
        if node is None or node.value is None:
            return None
        try:
            return S.parse(node.value, convert)
        except ValueError as e:
            raise _Fail(f"line {node.line}: {path}: {e}") from None

    def first(self, paths: tuple[str, ...], convert: Callable[[str], Any], base: _Node | None = None) -> Any:
        """The first of ``paths`` that is printed (an older or newer name of the same value)."""
        for p in paths:
            if (base or self.node).find(p) is not None:
                return self.get(p, convert, base)
        return None


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


# --- one GPU's calls -----------------------------------------------------------------------------

def _bus_id(g: _Gpu) -> str:
    text = g.text("PCI/Bus Id") or g.node.value or ""
    try:
        normalize_bus_id(text)
    except ValueError:
        raise _Fail(f"line {g.node.line}: GPU {g.index}: no valid PCI bus id ({text[:40]!r})") from None
    return text.strip()


def _pci(g: _Gpu, bus: str, masked: list[str]) -> dict[str, Any]:
    """nvmlDeviceGetPciInfo: busId, domain/bus/device, pciDeviceId, pciSubSystemId as printed."""
    fields: dict[str, Any] = {"busId": bus}
    for field, path in (("domain", "PCI/Domain"), ("bus", "PCI/Bus"), ("device", "PCI/Device")):
        v = g.get(path, S.hex32)
        if isinstance(v, int):
            fields[field] = v
    for field, path in (("pciDeviceId", "PCI/Device Id"), ("pciSubSystemId", "PCI/Sub System Id")):
        v = g.get(path, S.hex32)
        if not isinstance(v, int):
            continue
        if v >> 16 == 0:  # a zeroed device part (0x000010DE): masked by the contributor, not a real id
            masked.append(f"GPU {g.index} {path.split('/')[-1]} {g.text(path)!r} (zeroed)")
            continue
        fields[field] = v
    return struct("nvmlPciInfo_t", **fields)


_POWER_SECTIONS = ("GPU Power Readings", "Power Readings")


def _power(g: _Gpu, *names: str) -> Any:
    """A power value in mW from the first of ``names`` printed (old and new section names)."""
    for section in _POWER_SECTIONS:
        for n in names:
            if g.node.find(f"{section}/{n}") is not None:
                return g.get(f"{section}/{n}", S.milliwatts)
    return None


def _power_usage(g: _Gpu) -> Any:
    """nvmlDeviceGetPowerUsage: "Power Draw" before 570; from 570 the average draw, or the
    instantaneous one where the average is N/A. NVML documents that this call returns the 1 s
    average on Ampere (except GA100) and newer, and instantaneous power on GA100 and older, which
    is where nvidia-smi prints the average as N/A; the bundles' --query-gpu ``power.draw`` agrees
    (the average on H100, the instantaneous draw on a Turing GeForce)."""
    outcomes = [_power(g, n) for n in ("Power Draw", "Average Power Draw", "Instantaneous Power Draw")]
    value = next((o for o in outcomes if isinstance(o, int)), None)
    return value if value is not None else next((o for o in outcomes if o is not None), None)


_REASON_BITS: dict[str, int] = {
    "idle": 0x1, "applications clocks setting": 0x2, "sw power cap": 0x4, "hw slowdown": 0x8,
    "sync boost": 0x10, "sw thermal slowdown": 0x20, "hw thermal slowdown": 0x40,
    "hw power brake slowdown": 0x80, "display clock setting": 0x100,
}
"""``Clocks Event Reasons`` lines as nvidia-smi prints them -> the NVML reason bit."""


def _reasons(g: _Gpu) -> tuple[str, Any] | None:
    """The clocks event (throttle) reason mask, under the NVML call the driver of the capture had."""
    for section, fn in (("Clocks Event Reasons", "nvmlDeviceGetCurrentClocksEventReasons"),
                        ("Clocks Throttle Reasons", "nvmlDeviceGetCurrentClocksThrottleReasons")):
        sec = g.node.find(section)
        if sec is None:
            continue
        if sec.value:  # the whole section printed as one sentinel
            return fn, g.get(section, S.integer)
        mask, seen, unsupported = 0, 0, None
        for child in sec.walk():
            state = child.value
            if state is None:
                continue
            try:
                parsed = S.parse(state, lambda t: t)
            except ValueError as e:
                raise _Fail(f"line {child.line}: {section}/{child.key}: {e}") from None
            if isinstance(parsed, Unsupported):
                unsupported = parsed
                continue
            if parsed is None:
                continue
            if parsed not in ("Active", "Not Active"):
                raise _Fail(f"line {child.line}: {section}/{child.key}: expected Active or Not Active, "
                            f"got {parsed[:40]!r}")
            seen += 1
            bit = _REASON_BITS.get(child.key.lower())
            if parsed == "Active":
                if bit is None:
                    return None  # an active reason NVML's bits here do not name: leave the mask unrecorded
                mask |= bit
        if seen:
            return fn, mask
        if unsupported is not None:
            return fn, unsupported
        return None
    return None


def _ecc_total(g: _Gpu, counter: str, corrected: bool) -> Any:
    """nvmlDeviceGetTotalEccErrors for one (error type, counter), from either ECC layout.

    Before driver 470 ``-q`` printed Single Bit / Double Bit blocks with a Total line; since then
    SRAM and DRAM counts (SRAM uncorrectable split into Parity and SEC-DED from 590), whose sum is
    the total NVML gives.
    """
    base = g.node.find(f"ECC Errors/{counter}")
    if base is None:
        return None
    path = f"ECC Errors/{counter}"
    if base.find("Single Bit") is not None or base.find("Double Bit") is not None:
        return g.get(f"{path}/{'Single Bit' if corrected else 'Double Bit'}/Total", S.integer)
    if corrected:
        names = ["SRAM Correctable", "DRAM Correctable"]
    else:
        names = ["SRAM Uncorrectable"] if base.find("SRAM Uncorrectable") is not None else [
            "SRAM Uncorrectable Parity", "SRAM Uncorrectable SEC-DED"]
        names.append("DRAM Uncorrectable")
    parts = [g.get(f"{path}/{n}", S.integer) for n in names]
    numbers = [p for p in parts if isinstance(p, int)]
    if numbers:
        return sum(numbers)  # a part printed N/A (no such memory) counts nothing
    return next((p for p in parts if isinstance(p, Unsupported)), None)


def _retired(g: _Gpu, key: str, cause: int, addresses: dict[int, list[int]]) -> Any:
    """nvmlDeviceGetRetiredPages for one cause: the addresses, when they agree with the count."""
    count = g.get(f"Retired Pages/{key}", S.integer)
    if not isinstance(count, int):
        return count
    listed = addresses.get(cause, [])
    if len(listed) == count:
        return listed
    return None  # the addresses were not listed (or masked): a list cannot be given without inventing it


def _remapped(g: _Gpu) -> Any:
    """nvmlDeviceGetRemappedRows -> (corrected rows, uncorrected rows, pending, failure)."""
    node = g.node.find("Remapped Rows")
    if node is None:
        return None
    if not node.children:
        return g.get("Remapped Rows", S.integer)  # "N/A" -> unsupported
    return S.combine(g.get("Remapped Rows/Correctable Error", S.integer),
                     g.get("Remapped Rows/Uncorrectable Error", S.integer),
                     g.get("Remapped Rows/Pending", S.yes_no),
                     g.get("Remapped Rows/Remapping Failure Occurred", S.yes_no))


def _memory(g: _Gpu, base: _Node | None, section: str, *, v2: bool) -> Any:
    vals = {f: g.get(f"{section}/{f}", S.mib_bytes, base) for f in ("Total", "Used", "Free", "Reserved")}
    if v2 and vals["Reserved"] is not None:
        out = S.combine(vals["Total"], vals["Reserved"], vals["Used"], vals["Free"])
        if isinstance(out, list):
            return struct("c_nvmlMemory_v2_t", version=C.MEMORY_V2, total=out[0], reserved=out[1], used=out[2],
                          free=out[3])
        return out
    if vals["Total"] is None or isinstance(vals["Total"], Unsupported):
        return vals["Total"]
    fields = {f.lower(): vals[f] for f in ("Total", "Used", "Free") if isinstance(vals[f], int)}
    return struct("c_nvmlMemory_t", **fields)


def _write_gpu(w: NvmlWriter, g: _Gpu, extras: _Extras, retired: dict[str, dict[int, list[int]]],
               masked: list[str], shared_uuids: set[str]) -> None:
    bus = _bus_id(g)
    key = normalize_bus_id(bus)
    h = w.device(g.index)
    put = w.put
    # --- NvmlBackend._static ---
    put("nvmlDeviceGetPciInfo", h, value=_pci(g, bus, masked))
    put("nvmlDeviceGetEccMode", h, value=S.combine(g.get("ECC Mode/Current", S.enabled),
                                                   g.get("ECC Mode/Pending", S.enabled)))
    mig = S.combine(g.get("MIG Mode/Current", S.enabled), g.get("MIG Mode/Pending", S.enabled))
    put("nvmlDeviceGetMigMode", h, value=mig)
    put("nvmlDeviceGetPowerManagementLimitConstraints", h,
        value=S.combine(_power(g, "Min Power Limit"), _power(g, "Max Power Limit")))
    put("nvmlDeviceGetCudaComputeCapability", h, value=extras.compute_cap.get(key))
    put("nvmlDeviceGetMaxPcieLinkGeneration", h,
        value=g.get("PCI/GPU Link Info/PCIe Generation/Max", S.link_generation))
    put("nvmlDeviceGetMaxPcieLinkWidth", h, value=g.get("PCI/GPU Link Info/Link Width/Max", S.link_width))
    links = extras.nvlink.get(g.index)
    if isinstance(links, Unsupported):
        w.unsupported("nvmlDeviceGetNvLinkState", h, 0, note=links.note)
    elif links:
        for link, state in enumerate(links[:C.NVLINK_MAX_LINKS]):
            w.value("nvmlDeviceGetNvLinkState", h, link, value=state)
    put("nvmlDeviceGetComputeMode", h, value=g.get("Compute Mode", S.compute_mode))
    put("nvmlDeviceGetPersistenceMode", h, value=g.get("Persistence Mode", S.enabled))
    # "Requested Power Limit" (535+) is nvmlDeviceGetPowerManagementLimit; older drivers print "Power Limit"
    put("nvmlDeviceGetPowerManagementLimit", h, value=_power(g, "Requested Power Limit", "Power Limit"))
    put("nvmlDeviceGetPowerManagementDefaultLimit", h, value=_power(g, "Default Power Limit"))
    for clk, name in ((C.CLOCK_GRAPHICS, "Graphics"), (C.CLOCK_SM, "SM"), (C.CLOCK_MEM, "Memory")):
        put("nvmlDeviceGetMaxClockInfo", h, clk, value=g.get(f"Max Clocks/{name}", S.mhz))
    bar1 = S.combine(*(g.get(f"BAR1 Memory Usage/{f}", S.mib_bytes) for f in ("Total", "Used", "Free")))
    if isinstance(bar1, list):
        put("nvmlDeviceGetBAR1MemoryInfo", h, value=struct("c_nvmlBAR1Memory_t", bar1Total=bar1[0],
                                                           bar1Used=bar1[1], bar1Free=bar1[2]))
    else:
        put("nvmlDeviceGetBAR1MemoryInfo", h, value=bar1)
    # absolute thresholds only: the "T.Limit" lines of 550+ are offsets from T.Limit, not what
    # nvmlDeviceGetTemperatureThreshold returns, so they are not recorded
    for thr, name in ((C.THRESHOLD_SLOWDOWN, "GPU Slowdown Temp"), (C.THRESHOLD_SHUTDOWN, "GPU Shutdown Temp"),
                      (C.THRESHOLD_GPU_MAX, "GPU Max Operating Temp")):
        put("nvmlDeviceGetTemperatureThreshold", h, thr, value=g.get(f"Temperature/{name}", S.celsius))
    name = g.get("Product Name", S.name_text)
    put("nvmlDeviceGetName", h, value=name)
    uuid = g.get("GPU UUID", S.name_text)
    if isinstance(uuid, str) and uuid in shared_uuids:
        masked.append(f"GPU {g.index} UUID (the same as another GPU's: masked, so not recorded)")
    else:
        put("nvmlDeviceGetUUID", h, value=uuid)
    put("nvmlDeviceGetSerial", h, value=g.get("Serial Number", S.name_text))
    put("nvmlDeviceGetBoardPartNumber", h, value=g.first(("Board Part Number", "GPU Part Number"), S.name_text))
    put("nvmlDeviceGetBrand", h, value=g.get("Product Brand", S.brand))
    put("nvmlDeviceGetArchitecture", h, value=g.get("Product Architecture", S.architecture))
    put("nvmlDeviceGetVbiosVersion", h, value=g.get("VBIOS Version", S.version_text))
    if isinstance(mig, list) and mig[0] == C.FEATURE_ENABLED:
        _write_mig(w, g, h, name if isinstance(name, str) else None, extras.mig.get(g.index, {}), masked)
    # --- NvmlBackend._with_dynamic ---
    v2 = g.node.find("FB Memory Usage/Reserved") is not None
    put("nvmlDeviceGetMemoryInfo", *((h, C.MEMORY_V2) if v2 else (h,)),
        value=_memory(g, None, "FB Memory Usage", v2=True))
    util = S.combine(g.get("Utilization/GPU", S.percent), g.get("Utilization/Memory", S.percent))
    put("nvmlDeviceGetUtilizationRates", h,
        value=struct("c_nvmlUtilization_t", gpu=util[0], memory=util[1]) if isinstance(util, list) else util)
    reasons = _reasons(g)
    if reasons is not None:
        put(reasons[0], h, value=reasons[1])
    put("nvmlDeviceGetRemappedRows", h, value=_remapped(g))
    put("nvmlDeviceGetCurrPcieLinkGeneration", h,
        value=g.get("PCI/GPU Link Info/PCIe Generation/Current", S.link_generation))
    put("nvmlDeviceGetCurrPcieLinkWidth", h, value=g.get("PCI/GPU Link Info/Link Width/Current", S.link_width))
    put("nvmlDeviceGetTemperature", h, C.TEMPERATURE_GPU, value=g.get("Temperature/GPU Current Temp", S.celsius))
    put("nvmlDeviceGetPowerUsage", h, value=_power_usage(g))
    put("nvmlDeviceGetEnforcedPowerLimit", h, value=_power(g, "Current Power Limit", "Enforced Power Limit"))
    for clk, cname in ((C.CLOCK_GRAPHICS, "Graphics"), (C.CLOCK_SM, "SM"), (C.CLOCK_MEM, "Memory")):
        put("nvmlDeviceGetClockInfo", h, clk, value=g.get(f"Clocks/{cname}", S.mhz))
    put("nvmlDeviceGetFanSpeed", h, value=g.get("Fan Speed", S.percent))
    put("nvmlDeviceGetPerformanceState", h, value=g.get("Performance State", S.pstate))
    for et, corrected in ((C.MEMORY_ERROR_CORRECTED, True), (C.MEMORY_ERROR_UNCORRECTED, False)):
        for ct, counter in ((C.VOLATILE_ECC, "Volatile"), (C.AGGREGATE_ECC, "Aggregate")):
            put("nvmlDeviceGetTotalEccErrors", h, et, ct, value=_ecc_total(g, counter, corrected))
    addresses = retired.get(key, {})
    put("nvmlDeviceGetRetiredPages", h, C.RETIREMENT_CAUSE_SINGLE_BIT,
        value=_retired(g, "Single Bit ECC", C.RETIREMENT_CAUSE_SINGLE_BIT, addresses))
    put("nvmlDeviceGetRetiredPages", h, C.RETIREMENT_CAUSE_DOUBLE_BIT,
        value=_retired(g, "Double Bit ECC", C.RETIREMENT_CAUSE_DOUBLE_BIT, addresses))
    put("nvmlDeviceGetRetiredPagesPendingStatus", h,
        value=g.first(("Retired Pages/Pending Page Blacklist", "Retired Pages/Pending"), S.yes_no))


def _write_mig(w: NvmlWriter, g: _Gpu, h: dict[str, str], parent_name: str | None,
               listed: dict[int, tuple[str, str]], masked: list[str]) -> None:
    """MIG devices: nvmlDeviceGetMaxMigDeviceCount, then per listed slot its handle and values.

    ``-q`` prints each MIG device's index, instance ids, attributes and memory; ``-L`` its profile
    name and UUID. nvidia-smi does not print the maximum count: the highest listed index + 1 is
    recorded (the backend reads the same devices; the empty slots NVML would add are not known).
    """
    blocks = g.node.findall("MIG Device")
    group = g.node.find("MIG Devices")
    if group is not None:
        blocks += group.findall("MIG Device")
    slots: dict[int, _Node | None] = dict.fromkeys(listed)
    for pos, md in enumerate(blocks):
        idx = g.get("Index", S.integer, md)
        slot = idx if isinstance(idx, int) else pos
        if slot >= MAX_MIG_SLOTS:
            raise _Fail(f"line {md.line}: MIG device index {slot} is out of range")
        slots[slot] = md
    if not slots:
        return
    w.value("nvmlDeviceGetMaxMigDeviceCount", h, value=max(slots) + 1,
            note="the highest MIG device index nvidia-smi listed + 1; the real maximum is not printed")
    for slot in sorted(slots):
        block = slots[slot]
        mh = w.mig_device(h, slot)
        profile, uuid = listed.get(slot, (None, None))
        if profile and parent_name:
            w.value("nvmlDeviceGetName", mh, value=f"{parent_name} MIG {profile}",
                    note="parent's Product Name + the profile that nvidia-smi -L printed")
        if uuid and [u for _, u in listed.values()].count(uuid) > 1:
            masked.append(f"GPU {g.index} MIG device {slot} UUID (the same as another's: masked, so not recorded)")
        elif uuid:
            w.put("nvmlDeviceGetUUID", mh, value=S.parse(uuid, S.name_text))
        if block is None:
            continue
        md = block
        w.put("nvmlDeviceGetGpuInstanceId", mh, value=g.get("GPU Instance ID", S.integer, md))
        w.put("nvmlDeviceGetComputeInstanceId", mh, value=g.get("Compute Instance ID", S.integer, md))
        section = "Shared FB Memory Usage" if md.find("Shared FB Memory Usage") is not None else "FB Memory Usage"
        w.put("nvmlDeviceGetMemoryInfo", mh, value=_memory(g, md, section, v2=False))
        attrs: dict[str, Any] = {}
        for field, label in (("multiprocessorCount", "Multiprocessor count"),
                             ("sharedCopyEngineCount", "Copy Engine count"),
                             ("sharedEncoderCount", "Encoder count"), ("sharedDecoderCount", "Decoder count"),
                             ("sharedOfaCount", "OFA count"), ("sharedJpegCount", "JPG count")):
            v = g.get(f"Device Attributes/Shared/{label}", S.integer, md)
            if isinstance(v, int):
                attrs[field] = v
        if "multiprocessorCount" in attrs:
            w.value("nvmlDeviceGetAttributes", mh, value=struct("c_nvmlDeviceAttributes", **attrs))


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
                _write_gpu(w, _Gpu(node, i), ex, retired, masked if n == 0 else [], shared)
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
