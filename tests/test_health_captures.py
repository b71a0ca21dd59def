"""Health verdicts on the committed fixtures imported from real nvidia-smi captures: the GPUs with
ECC errors and retired pages warn or fail for the right reasons; healthy idle GPUs are ok."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuabst.health import Level, NodeHealth, evaluate
from gpuabst.machine import Machine

NVIDIA = Path(__file__).resolve().parent.parent / "fixtures" / "nvidia"


def verdict(name: str, poll: bool = False) -> NodeHealth:
    with Machine([NVIDIA / f"{name}.json"], backends=["nvml"]) as m:
        snap = m.snapshot()
        if poll:
            snap = m.poll()
    return evaluate(snap)


def levels(node: NodeHealth) -> dict[str, str]:
    """Every check that is not ok or not applicable, as ``id -> level``, per device."""
    return {f"gpu{d.index}.{c.id}": c.level.value for d in node.devices for c in d.checks
            if c.level not in (Level.OK, Level.NOT_APPLICABLE)}


def test_k80s_with_lifetime_ecc_errors_and_retired_pages_warn_for_those_reasons() -> None:
    node = verdict("k80-x4-azure")  # microsoft/pai nvidia_smi_out_of_order.xml: 4x Tesla K80, driver 430.26
    assert node.level is Level.WARN
    assert [d.level for d in node.devices[:2]] == [Level.WARN, Level.WARN]
    gpu0, gpu1 = node.devices[0], node.devices[1]
    # aggregate DBE 7 and 4 (SBE 7 and 34); one single-bit and one double-bit page retired on each
    assert gpu0.check("memory.ecc_lifetime").reason.startswith(
        "7 uncorrectable ECC errors over the GPU's lifetime (7 corrected)")
    assert gpu1.check("memory.ecc_lifetime").reason.startswith(
        "4 uncorrectable ECC errors over the GPU's lifetime (34 corrected)")
    for d in (gpu0, gpu1):
        assert d.check("retirement.pages").level is Level.WARN
        assert d.check("retirement.pages").reason.startswith("2 DRAM pages retired (1 single-bit, 1 double-bit)")
        assert d.check("memory.ecc_volatile").level is Level.OK  # nothing since the driver loaded
        assert d.check("thermal.temperature").level is Level.OK
    # the other two K80s have no errors: nothing warns or fails on them (MIG mode is not in a v10 XML:
    # that one check is unknown, never ok)
    for d in node.devices[2:]:
        assert {c.level for c in d.checks} <= {Level.OK, Level.NOT_APPLICABLE, Level.UNKNOWN}
        assert [c.id for c in d.checks if c.level is Level.UNKNOWN] == ["partitions.layout"]
        assert d.check("memory.ecc_lifetime").level is Level.OK
        assert d.check("retirement.pages").level is Level.OK


def test_v100_with_a_volatile_dbe_and_pending_retirement_fails_and_says_to_reset() -> None:
    node = verdict("v100-sxm3-retired-pages")  # microsoft/pai nvidia_smi_retired_pages.xml, driver 410.104
    assert node.level is Level.FAIL
    (d,) = node.devices
    assert levels(node) == {"gpu0.memory.ecc_volatile": "fail", "gpu0.memory.ecc_lifetime": "warn",
                            "gpu0.retirement.pages": "warn", "gpu0.partitions.layout": "unknown"}
    assert d.check("memory.ecc_volatile").reason.startswith("1 uncorrectable ECC error since the driver loaded")
    assert d.check("memory.ecc_lifetime").reason.startswith("7627 uncorrectable ECC errors over the GPU's lifetime")
    pages = d.check("retirement.pages").reason
    assert pages.startswith("DRAM pages are pending retirement (2 pages retired so far: 0 single-bit, 2 double-bit)"
                            ": reset the GPU")
    assert node.summary == "gpu0 fail (memory.ecc_volatile)"


HEALTHY_IDLE = [
    "a100-sxm4-mig-v12", "dual-a5000-v13", "gt-1030", "pro-6000-maxq-blackwell-v13", "rtx-3060-v12",
    "rtx-3080-v12-win", "rtx-3080-v13", "rtx-3090-v12", "rtx-3090-v13", "rtx-4000-sff-ada-v13",
    "h100-80gb-hbm3", "h100-mig", "l40s", "rtx-2080-super", "rtx-4080-super",
]


@pytest.mark.parametrize("name", HEALTHY_IDLE)
def test_healthy_idle_gpus_are_ok(name: str) -> None:
    node = verdict(name)
    assert levels(node) == {}
    assert node.level is Level.OK
    assert all(d.level is Level.OK for d in node.devices)
    # an ok device answered the core questions; it is not ok for lack of data
    for d in node.devices:
        for core in ("presence.device_lost", "thermal.temperature", "clocks.throttle", "pcie.link"):
            assert d.check(core).level is Level.OK, (d.index, core)


@pytest.mark.parametrize("name", ["h100-80gb-hbm3", "h100-mig", "l40s", "rtx-2080-super", "rtx-4080-super"])
def test_the_same_gpus_under_load_are_still_ok(name: str) -> None:
    # the nvidia-smi -q bundles hold an idle reading and a load reading: the poll replays the load one
    node = verdict(name, poll=True)
    assert node.level is Level.OK, levels(node)
    assert "while" not in node.devices[0].check("pcie.link").reason  # full link generation under load


@pytest.mark.parametrize(("name", "link"), [
    ("tesla-t4", "gen3 x8, capable of gen3 x16"), ("a10g", "gen1 x8, capable of gen4 x16"),
    ("quadro-p2000-v12", "gen1 x8, capable of gen3 x16"), ("rtx-2080-win", "gen3 x8, capable of gen3 x16"),
    ("dual-2070-v13", "gen1 x8, capable of gen3 x16"), ("dual-2080-v13", "gen1 x8, capable of gen3 x16"),
    ("gtx-1070-x2-v9", "gen3 x1, capable of gen3 x16"),
])
def test_a_narrower_link_than_the_maximum_warns_and_nothing_else_does(name: str, link: str) -> None:
    node = verdict(name)
    assert node.level is Level.WARN
    assert node.devices[0].check("pcie.link").reason.startswith(f"PCIe link at {link}")
    assert {k.split(".", 1)[1] for k, v in levels(node).items() if v != "unknown"} == {"pcie.link"}


def test_an_idle_generation_drop_is_not_a_problem() -> None:
    node = verdict("rtx-3090-v13")  # gen1 x16 at idle, capable of gen4 x16
    c = node.devices[0].check("pcie.link")
    assert c.level is Level.OK and c.reason.startswith("PCIe link at gen1 x16, capable of gen4 x16")


@pytest.mark.parametrize(("name", "unknown"), [
    ("gtx-1070-ti", "memory.ecc_volatile"),  # heavily trimmed capture
    ("grid-p4-1q-vgpu", "clocks.throttle"),  # the vGPU guest reports no clock-event reasons
])
def test_captures_missing_inputs_are_unknown_not_ok(name: str, unknown: str) -> None:
    node = verdict(name)
    assert node.level is Level.UNKNOWN
    c = node.devices[0].check(unknown)
    assert c.level is Level.UNKNOWN and c.reason.startswith("cannot tell") and "not_recorded" in c.reason


ALL_FIXTURES = sorted(p for vendor in ("nvidia", "amd", "opencl", "pci")
                      for p in (NVIDIA.parent / vendor).glob("*.json") if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=[f"{p.parent.name}/{p.stem}" for p in ALL_FIXTURES])
def test_every_fixture_gets_a_verdict_and_every_unknown_says_why(path: Path) -> None:
    with Machine([path]) as m:
        snap = m.snapshot()
        polled = m.poll()
    for node in (evaluate(snap), evaluate(polled)):
        for d in node.devices:
            assert not any(c.system == "internal" for c in d.checks), [c.reason for c in d.checks]
            for c in d.checks:
                if c.level is Level.UNKNOWN:
                    assert c.reason.startswith("cannot tell") or "not read" in c.reason, c.reason
                if c.level is Level.OK:
                    assert c.inputs, c.id  # an ok always rests on something that was read


def test_h200_at_its_power_cap_under_load_is_ok_and_says_so() -> None:
    """gpuabst's own NVML capture of an H200 running bf16 matrix products: 100 % busy at 692 of its
    700 W, clocks held by the software power cap. A GPU working as designed must not warn."""
    idle, busy = verdict("h200-nvml-idle"), verdict("h200-nvml-busy")
    assert idle.level is Level.OK and busy.level is Level.OK
    (d,) = busy.devices
    assert levels(busy) == {}
    assert d.check("clocks.throttle").reason == "clock-event reasons: sw_power_cap"
    assert d.check("power.draw").reason == "drawing 692.352 W of its 700 W limit"
    assert d.check("thermal.temperature").reason == "GPU at 63 C, 26 C below its slowdown threshold 89 C"
    assert idle.devices[0].check("thermal.temperature").reason == (
        "GPU at 40 C, 49 C below its slowdown threshold 89 C")
    # remapped rows replace page retirement on Hopper: not applicable, not unknown
    assert d.check("retirement.pages").level is Level.NOT_APPLICABLE


def test_h100_at_its_power_cap_under_load_is_ok() -> None:
    """The same check on gpuabst's own capture of an H100 under the same load: 699 W of 700 W."""
    idle, busy = verdict("h100-nvml-idle"), verdict("h100-nvml-busy")
    assert idle.level is Level.OK and busy.level is Level.OK and levels(busy) == {}
    (d,) = busy.devices
    assert d.check("clocks.throttle").reason == "clock-event reasons: sw_power_cap"
    assert d.check("power.draw").reason == "drawing 698.969 W of its 700 W limit"
    assert idle.devices[0].check("clocks.throttle").reason == "clock-event reasons: gpu_idle"
