"""No serial number or UUID from any real capture appears anywhere in fixtures/ (issue 8, reliability 6).

Identifiers are read from the captures independently of the importers: XML elements, text fields,
JSON keys, and every UUID-shaped string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import CAPTURES, FIXTURES, needs_captures

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
XML_IDS = re.compile(r"<(serial|uuid|board_id|gpu_serial|chassis_serial_number)>\s*([^<]+?)\s*</\1>")
TEXT_IDS = re.compile(r"(?m)^\s*(?:Serial Number|GPU UUID|UUID|Board ID|Chassis Serial Number)\s*:\s*(\S.*?)\s*$")
JSON_ID_KEYS = {"serial number", "unique id", "serial", "asic_serial", "uuid", "product_serial", "guid",
                "gpu_serial", "fru_id"}
PLACEHOLDERS = re.compile(r"(?i)^(n/?a|\[n/a\]|none|0+|0x0+|\[?redacted\]?|unknown|not available|)$")


def _json_ids(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for k, v in data.items():
            if str(k).strip().lower().rstrip(":") in JSON_ID_KEYS and isinstance(v, (str, int)):
                yield str(v).strip()
            yield from _json_ids(v)
    elif isinstance(data, list):
        for v in data:
            yield from _json_ids(v)


def capture_identifiers() -> set[str]:
    ids: set[str] = set()
    for path in CAPTURES.rglob("*"):
        if not path.is_file() or path.name == "INDEX.md":
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        ids.update(m.group(0) for m in UUID.finditer(text))
        ids.update(m.group(2) for m in XML_IDS.finditer(text))
        ids.update(m.group(1) for m in TEXT_IDS.finditer(text))
        try:
            ids.update(_json_ids(json.loads(text)))
        except ValueError:
            pass
    # short values (GUID "55069", fru ids "0x100") are not identifying and would match unrelated numbers
    return {i for i in ids if not PLACEHOLDERS.match(i) and len(i) >= 8 and not set(i) <= set("0-")}


@needs_captures
def test_no_capture_identifier_appears_in_fixtures() -> None:
    ids = capture_identifiers()
    assert len(ids) > 20  # the captures really hold identifiers: the check below means something
    fixture_text = "\n".join(p.read_text(encoding="utf-8").lower() for p in sorted(FIXTURES.rglob("*.json")))
    leaked = sorted(i for i in ids if i.lower() in fixture_text)
    assert leaked == []


@needs_captures
def test_identifier_reader_finds_known_kinds() -> None:
    ids = capture_identifiers()
    assert any(i.startswith("GPU-") or UUID.fullmatch(i) for i in ids)
    assert any(i.isdigit() and len(i) == 13 for i in ids)  # NVIDIA board serials


def test_fixture_directory_exists() -> None:
    assert Path(FIXTURES).is_dir()
