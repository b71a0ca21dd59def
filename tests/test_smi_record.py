"""smi_record: the nvidia-smi record -> NVML calls logic, over a third, dict-shaped format of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gpuabst_nvml.smi_record as R
import pytest
from gpuabst_nvml import constants as C
from gpuabst_nvml import synth as S
from gpuabst_nvml.synth import NvmlWriter, Unsupported

from gpuabst.fixtures.builder import FixtureBuilder


class Bad(Exception):
    pass


PARTS = {part: part for part in R.ECC_PARTS}


class DictRecord(R.SmiRecord):
    """A GPU as nested dicts (a section is a dict, a printed value a str)."""

    paths = {
        "pci.bus_id": "pci/bus_id", "pci.device_id": "pci/device_id", "pci.sub_system_id": "pci/subsystem",
        "pci.domain": "pci/domain", "pci.bus": "pci/bus", "pci.device": "pci/device",
        "power.limit": R.power_paths(("new", "old"), "requested", "limit"),
        "remapped_rows": "rows", "remapped_rows.correctable": "rows/corr", "remapped_rows.uncorrectable": "rows/unc",
        "remapped_rows.pending": "rows/pending", "remapped_rows.failure": "rows/failure",
        "retired.single_bit.count": "retired/sbe",
        **R.ecc_paths("ecc", {"volatile": "vol", "aggregate": "agg"}, PARTS, "total"),
    }

    def __init__(self, tree: dict[str, Any], masked: list[str] | None = None,
                 addresses: list[int] | None = None) -> None:
        super().__init__(0, [] if masked is None else masked)
        self.tree = tree
        self.addresses = addresses
        self.address_reads = 0

    def _find(self, path: str, base: Any = None) -> Any:
        node: Any = self.tree if base is None else base
        for part in path.split("/"):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def _has_children(self, node: Any) -> bool:
        return isinstance(node, dict)

    def _text(self, path: str) -> str | None:
        node = self._find(path)
        return node if isinstance(node, str) else None

    def _get(self, path: str, convert: Callable[[str], Any], base: Any = None) -> Any:
        node = self._find(path, base)
        try:
            return S.parse(node if isinstance(node, str) else None, convert)
        except ValueError as e:
            raise Bad(f"{path}: {e}") from None

    def error(self, message: str) -> Exception:
        return Bad(message)

    def header_bus_id(self) -> str | None:
        return None

    def bus_id_error(self, text: str) -> Exception:
        return Bad(f"bad bus id {text!r}")

    def retired_addresses(self, cause: int) -> list[int]:
        self.address_reads += 1
        return self.addresses or []


def test_the_first_printed_path_of_a_renamed_value_is_read() -> None:
    g = DictRecord({"old": {"limit": "100 W"}, "new": {"limit": "N/A"}})
    assert g.get("power.limit", S.milliwatts) == Unsupported("nvidia-smi printed 'N/A'")  # new section first
    assert DictRecord({"old": {"requested": "70 W", "limit": "100 W"}}).get("power.limit", S.milliwatts) == 70000
    assert DictRecord({}).get("power.limit", S.milliwatts) is None
    with pytest.raises(Bad, match="new/requested: expected a power in W"):
        DictRecord({"new": {"requested": "lots"}}).get("power.limit", S.milliwatts)


def test_reason_mask() -> None:
    states = [("Active", 0x4, "a"), ("Not Active", 0x1, "b")]
    assert R.reason_mask(states, Bad) == 0x4
    assert R.reason_mask([("Active", None, "a"), ("Active", 0x4, "b")], Bad) is None  # a bit NVML does not name
    na = Unsupported("nvidia-smi printed 'N/A'")
    assert R.reason_mask([(na, 0x4, "a"), (None, 0x1, "b")], Bad) == na
    assert R.reason_mask([(na, 0x4, "a"), ("Not Active", 0x1, "b")], Bad) == 0  # one real state wins
    assert R.reason_mask([], Bad) is None
    with pytest.raises(Bad, match="where: expected Active or Not Active, got 'Maybe'"):
        R.reason_mask([("Maybe", 0x4, "where")], Bad)


@pytest.mark.parametrize(("ecc", "corrected", "want"), [
    ({"vol": {"single_bit": {"total": "3"}, "double_bit": {"total": "1"}}}, True, 3),  # before driver 470
    ({"vol": {"single_bit": {"total": "3"}, "double_bit": {"total": "1"}}}, False, 1),
    ({"vol": {"sram_correctable": "2", "dram_correctable": "N/A"}}, True, 2),  # N/A part counts nothing
    ({"vol": {"sram_uncorrectable": "1", "sram_uncorrectable_parity": "5", "dram_uncorrectable": "4"}}, False, 5),
    ({"vol": {"sram_uncorrectable_parity": "5", "sram_uncorrectable_secded": "6", "dram_uncorrectable": "0"}},
     False, 11),  # 590+: SRAM uncorrectable split
    ({"vol": {"sram_correctable": "N/A", "dram_correctable": "N/A"}}, True, Unsupported("nvidia-smi printed 'N/A'")),
    ({"agg": {"sram_correctable": "1"}}, True, None),  # no volatile block
])
def test_ecc_total_from_either_layout(ecc: dict[str, Any], corrected: bool, want: Any) -> None:
    assert R.ecc_total(DictRecord({"ecc": ecc}), "volatile", corrected) == want


def test_retired_pages_only_when_the_addresses_agree_with_the_count() -> None:
    g = DictRecord({"retired": {"sbe": "2"}}, addresses=[0x10, 0x20])
    assert R.retired_pages(g, C.RETIREMENT_CAUSE_SINGLE_BIT, "single_bit") == [0x10, 0x20]
    g = DictRecord({"retired": {"sbe": "3"}}, addresses=[0x10, 0x20])
    assert R.retired_pages(g, C.RETIREMENT_CAUSE_SINGLE_BIT, "single_bit") is None
    g = DictRecord({"retired": {"sbe": "N/A"}}, addresses=[0x10])
    assert R.retired_pages(g, C.RETIREMENT_CAUSE_SINGLE_BIT, "single_bit") == Unsupported("nvidia-smi printed 'N/A'")
    assert g.address_reads == 0  # no count, no addresses read


def test_remapped_rows_section_value_or_missing() -> None:
    assert R.remapped_rows(DictRecord({})) is None
    assert R.remapped_rows(DictRecord({"rows": "N/A"})) == Unsupported("nvidia-smi printed 'N/A'")
    rows = {"corr": "0", "unc": "2", "pending": "No", "failure": "Yes"}
    assert R.remapped_rows(DictRecord({"rows": rows})) == [0, 2, 0, 1]


def test_pci_info_leaves_out_a_zeroed_device_id_and_notes_it() -> None:
    masked: list[str] = []
    g = DictRecord({"pci": {"bus_id": "00000000:3B:00.0", "device_id": "000010DE", "subsystem": "145710DE",
                            "domain": "0x0000", "bus": "0x3B", "device": "0x00"}}, masked)
    info = R.pci_info(g, g.bus_id())
    assert info["pciSubSystemId"] == 0x145710DE and info["bus"] == 0x3B and "pciDeviceId" not in info
    assert masked == ["gpu 0 device_id '000010DE' (zeroed)"]
    with pytest.raises(Bad, match="bad bus id 'nope'"):
        DictRecord({"pci": {"bus_id": "nope"}}).bus_id()


def test_memory_structures() -> None:
    assert R.memory_v1(None, 1, 2) is None
    assert R.memory_v1(Unsupported("x"), 1, 2) == Unsupported("x")
    v1 = R.memory_v1(8 * S.MIB, Unsupported("x"), 4 * S.MIB)
    assert v1["$struct"] == "c_nvmlMemory_t" and v1["total"] == 8 * S.MIB and "used" not in v1
    assert R.memory_v2(8, 1, 3, 4)["version"] == C.MEMORY_V2


def test_write_mig_records_the_count_and_each_listed_slot() -> None:
    class MigRecord(DictRecord):
        paths = {**DictRecord.paths, "mig.gpu_instance_id": "gi", "mig.compute_instance_id": "ci",
                 "mig.multiprocessorCount": "sm", **{f"mig.{f}": f for f in R.MIG_ATTRIBUTES[1:]}}

        def mig_slots(self) -> list[tuple[int, Any]]:
            return [(0, {"gi": "1", "ci": "0", "sm": "14"}), (2, None)]

        def write_mig_identity(self, w: NvmlWriter, mh: dict[str, str], slot: int, block: Any,
                               parent_name: str | None) -> None:
            w.value("nvmlDeviceGetName", mh, value=f"{parent_name} MIG {slot}")

        def mig_memory(self, block: Any) -> Any:
            return None

    log = FixtureBuilder({"kind": "synthetic"}).backend("nvml", library={"name": "nvidia-ml-py", "version": None})
    w = NvmlWriter(log)
    R.write_mig(w, MigRecord({}), w.device(0), "GPU")
    calls = [(c["fn"], c.get("result")) for c in log.calls]
    assert ("nvmlDeviceGetMaxMigDeviceCount", 3) in calls  # highest listed slot + 1
    names = [r for fn, r in calls if fn == "nvmlDeviceGetName"]
    assert names == ["GPU MIG 0", "GPU MIG 2"]
    attrs = [r for fn, r in calls if fn == "nvmlDeviceGetAttributes"]
    assert attrs == [{"$struct": "c_nvmlDeviceAttributes", "multiprocessorCount": 14}]
    assert [fn for fn, _ in calls].count("nvmlDeviceGetGpuInstanceId") == 1  # slot 2 has no block
