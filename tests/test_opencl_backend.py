"""The OpenCL backend replayed through its fake pyopencl: fields, PCI location, vendor queries a device
rejects, and bad input (no runtime, a platform that fails, garbage bitfields)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import opencl_synthetic as S
import pytest
from gpuabst_opencl import binding, fake_pyopencl
from gpuabst_opencl import constants as C
from gpuabst_opencl.backend import OpenClBackend, amd_topology_bus_id, device_type_of, vendor_of

from gpuabst.backend import ReplayLibrary
from gpuabst.fixtures import format as fmt
from gpuabst.fixtures.tape import Fault, Tape
from gpuabst.machine import Machine, recordings_of
from gpuabst.reading import Status

ROOT = Path(__file__).resolve().parent.parent
POCL = ROOT / "fixtures" / "opencl" / "pocl-cpu.json"
POCL_GARBAGE = 0x55FD00000000  # what PoCL 3.1 answered for DEVICE_ENQUEUE_CAPABILITIES in one run here


def _answer(tape: Tape, answers: dict[str, object]) -> None:
    """Make single queries answer differently (Fault matches whole functions; these are one query)."""
    real = tape.play

    def play(fn: str, args: tuple[object, ...], kwargs: dict[str, object] | None = None) -> object:
        if fn == "device_info" and args[1] in answers:
            answer = answers[str(args[1])]
            if isinstance(answer, dict) and "code" in answer:
                fake_pyopencl.raise_recorded(answer)
            return answer
        return real(fn, args, kwargs)

    tape.play = play  # type: ignore[method-assign]


def _backend(fixture: fmt.Fixture) -> tuple[OpenClBackend, ReplayLibrary]:
    lib = ReplayLibrary(recordings_of([fixture]))
    return OpenClBackend(lib), lib


def test_mixed_machine_reads_every_platform_and_decodes_each_pci_extension() -> None:
    devs = S.devices_of([S.mixed_fixture()], backends=["opencl"])
    assert [(d.vendor, d.device_type, d.pci.bus_id.value) for d in devs] == [
        ("amd", "gpu", "0000:c1:00.0"),  # TOPOLOGY_AMD, bus above 127 kept unsigned
        ("intel", "gpu", "0000:3b:00.0"),  # cl_khr_pci_bus_info
        ("nvidia", "gpu", "0000:18:00.0"),  # PCI_BUS_ID_NV / PCI_SLOT_ID_NV / PCI_DOMAIN_ID_NV
    ]
    amd, intel, nv = devs
    assert amd.pci.bus_id.call == "clGetDeviceInfo(CL_DEVICE_TOPOLOGY_AMD)"
    assert intel.pci.bus_id.call == "clGetDeviceInfo(CL_DEVICE_PCI_BUS_INFO_KHR)"
    assert nv.pci.bus_id.call == "clGetDeviceInfo(CL_DEVICE_PCI_BUS_ID_NV)"
    assert amd.board_product_name.value == "AMD Instinct MI300X" and amd.pci.device_id.value == "0x74a1"
    assert nv.capabilities.compute_capability.value == "9.0"
    assert nv.memory.total_bytes.value == S.H100_OPENCL_MEMORY
    assert nv.memory.max_allocation_bytes.value == S.H100_OPENCL_MEMORY // 4
    assert nv.memory.local_memory_bytes.value == 49152
    assert nv.capabilities.compute_units.value == 132 and nv.capabilities.max_graphics_clock_mhz.value == 1980
    assert nv.capabilities.ecc_enabled.value is True and nv.capabilities.unified_memory.value is False
    assert (nv.capabilities.fp64.value, nv.capabilities.fp16.value) == (True, False)
    assert (intel.capabilities.fp64.value, intel.capabilities.fp16.value) == (False, True)
    assert nv.platform_name.value == "NVIDIA CUDA" and nv.platform_version.value == "OpenCL 3.0 CUDA 13.1.80"
    assert nv.capabilities.opencl_version.value == "OpenCL 3.0 CUDA"
    assert nv.capabilities.opencl_c_version.value == "OpenCL C 1.2"
    assert "cl_nv_device_attribute_query" in nv.capabilities.extensions.get([])
    assert nv.memory.total_bytes.call == "clGetDeviceInfo(CL_DEVICE_GLOBAL_MEM_SIZE)"
    assert all(d.sources == ["opencl"] for d in devs)


def test_vendor_queries_a_device_rejects_say_so() -> None:
    amd, _, nv = S.devices_of([S.mixed_fixture()], backends=["opencl"])
    # NVIDIA's query on an AMD device: -30, and the device does not list the extension
    cc = amd.capabilities.compute_capability
    assert cc.status is Status.NOT_APPLICABLE
    assert "cl_nv_device_attribute_query" in (cc.reason or "") and "CL_INVALID_VALUE (-30)" in (cc.reason or "")
    assert nv.board_product_name.status is Status.NOT_APPLICABLE
    # an OpenCL 3.0 query on an OpenCL 2.0 device
    assert amd.capabilities.device_enqueue.status is Status.NOT_APPLICABLE


def test_a_listed_extension_whose_query_fails_is_unsupported_not_hidden() -> None:
    fixture = S.mixed_fixture()
    backend, lib = _backend(fixture)
    backend.open()
    _answer(lib.tapes["opencl"], {"TOPOLOGY_AMD": S.INVALID_VALUE})
    amd = backend.devices()[0]
    assert amd.pci.bus_id.status is Status.UNSUPPORTED
    assert "cl_amd_device_attribute_query" in (amd.pci.bus_id.reason or "")


def test_pocl_capture_replays_as_a_cpu_device_with_no_pci_location() -> None:
    (d,) = S.devices_of([POCL], backends=["opencl"])
    assert d.device_type == "cpu"
    assert d.pci.bus_id.status is Status.NOT_APPLICABLE and "CPU" in (d.pci.bus_id.reason or "")
    assert d.pci.vendor_id.status is Status.NOT_APPLICABLE and "0x8086" in (d.pci.vendor_id.reason or "")
    assert d.capabilities.compute_units.ok and d.memory.total_bytes.ok


def test_no_opencl_runtime_makes_the_backend_unavailable_with_what_to_install() -> None:
    (report,) = S.backends_of([S.no_platform_fixture()], backends=["opencl"])
    assert not report.available
    assert "CL_PLATFORM_NOT_FOUND_KHR" in (report.reason or "") and "pocl-opencl-icd" in (report.reason or "")
    assert "gpuabst[opencl]" in (report.install_hint or "")
    snap = S.snapshot_of([S.no_platform_fixture()], backends=["opencl"])
    assert snap.devices == []


def test_an_empty_platform_list_is_the_same_as_no_runtime() -> None:
    fixture = S.no_platform_fixture()
    fixture.backends["opencl"].calls[:] = [{"fn": "platforms", "args": [], "result": []}]
    (report,) = S.backends_of([fixture], backends=["opencl"])
    assert not report.available and "no OpenCL platform" in (report.reason or "")


def test_a_platform_whose_devices_fail_to_enumerate_does_not_hide_the_others() -> None:
    snap = S.snapshot_of([S.mixed_fixture(failing_platform=True)], backends=["opencl"])
    assert [d.vendor for d in snap.devices] == ["amd", "nvidia"]
    (report,) = snap.backends
    assert report.available and report.device_count == 2
    assert "platform 1 (Intel(R) OpenCL Graphics)" in (report.reason or "")
    assert "CL_OUT_OF_RESOURCES (-5)" in (report.reason or "")


def test_a_platform_with_no_device_is_not_a_failure() -> None:
    fixture = S.mixed_fixture(failing_platform=True)
    for call in fixture.backends["opencl"].calls:
        if call["fn"] == "platform_devices" and "error" in call:
            call["error"] = {"code": -1, "name": "CL_DEVICE_NOT_FOUND"}
    snap = S.snapshot_of([fixture], backends=["opencl"])
    assert len(snap.devices) == 2 and snap.backends[0].reason is None


def test_garbage_bits_in_a_bitfield_give_a_clear_error_and_keep_everything_else() -> None:
    backend, lib = _backend(fmt.load(POCL))
    backend.open()
    _answer(lib.tapes["opencl"], {"DEVICE_ENQUEUE_CAPABILITIES": POCL_GARBAGE, "DOUBLE_FP_CONFIG": POCL_GARBAGE})
    (d,) = backend.devices()
    enq = d.capabilities.device_enqueue
    assert enq.status is Status.ERROR
    assert "0x55fd00000000" in (enq.reason or "") and "does not define" in (enq.reason or "")
    assert d.capabilities.fp64.status is Status.ERROR  # not silently replaced by the extension list
    assert d.capabilities.compute_units.ok and d.name.ok and d.device_type == "cpu"


def test_garbage_device_type_is_unknown_not_a_crash() -> None:
    with pytest.raises(ValueError, match="does not define"):
        device_type_of(2 | 0x4000_0000)
    assert device_type_of(4 | 1) == "gpu"
    fixture = fmt.load(POCL)
    for call in fixture.backends["opencl"].calls:
        if call["fn"] == "device_info" and call["args"][1] == "TYPE":
            call["result"] = 0x55FD00000002
    (d,) = S.devices_of([fixture], backends=["opencl"])
    assert d.device_type == "unknown" and d.memory.total_bytes.ok


def test_decode_bits() -> None:
    assert C.decode_bits(191, C.FP_CONFIG_BITS, "x") == [
        "denorm", "inf_nan", "round_to_nearest", "round_to_zero", "round_to_inf", "fma",
        "correctly_rounded_divide_sqrt"]
    with pytest.raises(ValueError, match="0x100"):
        C.decode_bits(0x1FF, C.FP_CONFIG_BITS, "CL_DEVICE_DOUBLE_FP_CONFIG")
    with pytest.raises(ValueError, match="negative"):
        C.decode_bits(-1, C.FP_CONFIG_BITS, "x")


def test_a_call_missing_from_the_fixture_is_not_recorded_not_a_crash() -> None:
    fixture = fmt.load(POCL)
    fixture.backends["opencl"].calls[:] = [c for c in fixture.backends["opencl"].calls
                                           if not (c["fn"] == "device_info" and c["args"][1] == "GLOBAL_MEM_SIZE")]
    (d,) = S.devices_of([fixture], backends=["opencl"])
    assert d.memory.total_bytes.status is Status.NOT_RECORDED and d.name.ok


def test_a_hanging_query_times_out_and_the_rest_is_read() -> None:
    lib = ReplayLibrary(recordings_of([S.mixed_fixture()]))
    backend = OpenClBackend(lib, call_timeout_s=1.0)
    backend.open()
    lib.tapes["opencl"].inject(Fault("device_info", handle="n0", delay_s=3.0, times=1))
    devs = backend.devices()
    nv = devs[2]
    assert nv.device_type == "unknown"  # TYPE (the first query) hung
    assert nv.name.ok and nv.pci.bus_id.value == "0000:18:00.0"
    backend.close()


def test_fake_errors_have_pyopencls_shape() -> None:
    with pytest.raises(fake_pyopencl.LogicError) as e:
        fake_pyopencl.raise_recorded({"code": "CL_PLATFORM_NOT_FOUND_KHR"})
    assert e.value.code == -1001 and isinstance(e.value, fake_pyopencl.Error)
    with pytest.raises(fake_pyopencl.RuntimeError):
        fake_pyopencl.raise_recorded({"code": -5, "class": "RuntimeError"})
    with pytest.raises(fake_pyopencl.MemoryError):
        fake_pyopencl.raise_recorded({"code": -6})
    with pytest.raises(fake_pyopencl.ReplayedException):
        fake_pyopencl.raise_recorded({"code": "exception", "name": "OSError", "message": "boom"})
    info = binding.classify(fake_pyopencl.LogicError(-30, "clGetDeviceInfo"))
    assert info is not None and info.status is Status.UNSUPPORTED
    assert info.reason == "CL_INVALID_VALUE (-30) from clGetDeviceInfo"
    assert binding.classify(ValueError("not ours")) is None
    assert binding.classify(RuntimeError("the builtin one")) is None


def test_raw_structures_decode() -> None:
    khr = b"".join(v.to_bytes(4, "little") for v in (0, 0x3B, 0, 1))
    assert binding.decode_raw("PCI_BUS_INFO_KHR", khr) == {"pci_domain": 0, "pci_bus": 0x3B, "pci_device": 0,
                                                           "pci_function": 1}
    topo = (1).to_bytes(4, "little") + bytes(17) + bytes([0xC1, 0x00, 0x01])
    assert binding.decode_raw("TOPOLOGY_AMD", topo) == {"type": 1, "bus": 0xC1, "device": 0, "function": 1}
    with pytest.raises(ValueError, match="expected 16"):
        binding.decode_raw("PCI_BUS_INFO_KHR", b"\x00" * 8)
    with pytest.raises(ValueError, match="expected 24"):
        binding.decode_raw("TOPOLOGY_AMD", topo[:20])
    assert binding.decode_raw("PCIE_ID_AMD", (0x74A1).to_bytes(4, "little")) == 0x74A1
    with pytest.raises(ValueError, match="no raw decoder for SOMETHING_NEW"):
        binding.decode_raw("SOMETHING_NEW", b"")


def test_query_answers_become_plain_json_values() -> None:
    """pyopencl answers bytes, tuples, numpy integers and its own objects; a capture records plain data."""

    class NumpyLikeInt:
        def __int__(self) -> int:
            return 7

    class Opaque:
        def __str__(self) -> str:
            return "<opaque>"

    assert binding._plain(b"Portable Computing Language\xff") == "Portable Computing Language\ufffd"
    assert binding._plain((1024, 1024, b"x")) == [1024, 1024, "x"]
    assert binding._plain(NumpyLikeInt()) == 7
    assert binding._plain(Opaque()) == "<opaque>"
    assert [binding._plain(v) for v in (True, 1.5, None, "s")] == [True, 1.5, None, "s"]


def test_errors_pyopencl_did_not_raise_are_not_classified_or_recorded_as_its_own() -> None:
    raw = binding.RawQueryUnavailable("no OpenCL library found to call clGetDeviceInfo directly")
    info = binding.classify(raw)
    assert info is not None and (info.status, info.reason) == (Status.UNSUPPORTED, str(raw))
    codec = binding.OpenClCodec()
    assert codec.encode_error(raw) == {"code": "raw_query_unavailable", "name": "RawQueryUnavailable",
                                       "message": str(raw)}
    assert codec.encode_error(ValueError("not ours")) is None

    class Error(Exception):  # named like pyopencl's, but its code cannot be read
        @property
        def code(self) -> int:
            raise AttributeError("gone")

        @property
        def routine(self) -> str:
            raise AttributeError("gone")

    assert binding.error_code(Error()) is None and binding.error_routine(Error()) is None
    coded = binding._CodedError("clGetDeviceInfo", C.INVALID_VALUE, "bad query")
    assert binding.error_code(coded) == C.INVALID_VALUE and binding.error_routine(coded) == "clGetDeviceInfo"
    assert codec.encode_error(coded) == {"code": C.INVALID_VALUE, "name": "CL_INVALID_VALUE",
                                         "class": C.error_class(C.INVALID_VALUE), "routine": "clGetDeviceInfo"}


def test_vendor_names() -> None:
    from gpuabst.reading import missing, ok

    none = missing(Status.UNSUPPORTED)
    assert vendor_of(ok("GenuineIntel"), ok(0x8086)) == "intel"
    assert vendor_of(ok("AuthenticAMD"), ok(0x1002)) == "amd"
    assert vendor_of(ok("Advanced Micro Devices, Inc."), none) == "amd"
    assert vendor_of(ok("NVIDIA Corporation"), none) == "nvidia"
    assert vendor_of(ok("ARM"), none) == "arm"
    assert vendor_of(none, ok(0x10DE)) == "nvidia"
    assert vendor_of(ok("Pharmacorp"), none) == "pharmacorp"


def test_replaying_opencl_imports_neither_pyopencl_nor_numpy() -> None:
    code = f"""
        import sys, gpuabst
        devs = gpuabst.devices([{str(POCL)!r}], backends=["opencl"])
        print(len(devs), sorted(m for m in ("pyopencl", "numpy") if m in sys.modules))
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1 []"


def test_without_pyopencl_the_backend_says_what_to_install() -> None:
    code = """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "pyopencl":
                    raise ImportError("No module named 'pyopencl' (blocked for this test)")
        sys.meta_path.insert(0, Block())
        import gpuabst
        (r,) = gpuabst.backends(backends=["opencl"])
        print(r.available, r.reason)
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("False pyopencl is not installed") and "gpuabst[opencl]" in r.stdout


def test_poll_keeps_static_facts_and_makes_no_vendor_call() -> None:
    with Machine([S.mixed_fixture()], backends=["opencl"]) as m:
        first = m.snapshot()
        tape = m.library.tapes["opencl"]  # type: ignore[attr-defined]
        before = tape.calls_made
        again = m.poll()
        assert tape.calls_made == before
        assert [d.pci.bus_id.value for d in again.devices] == [d.pci.bus_id.value for d in first.devices]


def test_cli_counts_the_pocl_cpu_device_only_with_all(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from gpuabst.cli.main import main

    assert main(["list", "--fixture", str(POCL), "--backend", "opencl"]) == 0
    out = capsys.readouterr().out
    assert "No GPU found." in out and "opencl: available, 1 device, none a GPU (see --all)" in out
    assert main(["list", "--all", "--fixture", str(POCL), "--backend", "opencl"]) == 0
    out = capsys.readouterr().out
    assert "pthread-skylake-avx512-Intel(R) Xeon(R) Processor" in out and "[cpu]" in out
    assert main(["show", "--json", "--fixture", str(POCL), "--backend", "opencl"]) == 0
    assert '"devices": []' in capsys.readouterr().out
    fmt.save(S.mixed_fixture(failing_platform=True), tmp_path / "mixed.json")
    assert main(["backends", "--fixture", str(tmp_path / "mixed.json"), "--backend", "opencl"]) == 0
    assert "note: platform 1 (Intel(R) OpenCL Graphics): devices could not be listed" in capsys.readouterr().out


def test_odd_answers_become_readings_not_a_failed_backend() -> None:
    fixture = S.mixed_fixture()
    for call in fixture.backends["opencl"].calls:
        if call["fn"] == "device_info" and call["args"][1] == "TOPOLOGY_AMD":
            call["result"] = "not a structure"
        if call["fn"] == "platform_devices" and call["args"][0] == {"$handle": "p1"}:
            call["result"] = 7
    snap = S.snapshot_of([fixture], backends=["opencl"])
    amd = snap.devices[0]
    assert amd.pci.bus_id.status is Status.ERROR and "not a structure" in (amd.pci.bus_id.reason or "")
    assert [d.vendor for d in snap.devices] == ["amd", "nvidia"]
    assert "device list is not a list" in (snap.backends[0].reason or "")
    topo = {"type": 2, "bus": 1, "device": 0, "function": 0}
    with pytest.raises(ValueError, match="not a PCIe topology"):
        amd_topology_bus_id(topo)


def test_a_query_this_pyopencl_does_not_know_is_its_invalid_value_error_even_if_its_error_record_changed() -> None:
    """PyOpenClApi over a pyopencl whose private error record is gone: the error keeps its code."""
    import types

    class Error(Exception):
        pass

    class LogicError(Error):
        pass

    cl = types.SimpleNamespace(Error=Error, LogicError=LogicError, RuntimeError=Error, MemoryError=Error,
                               device_info=types.SimpleNamespace(NAME=1), _cl=types.SimpleNamespace())
    api = binding.PyOpenClApi(cl)
    with pytest.raises(binding._CodedError) as raised:
        api.device_info(object(), "SOMETHING_NEWER")
    err = raised.value
    assert binding.error_code(err) == C.INVALID_VALUE
    info = binding.classify(err)
    assert info is not None and info.status is Status.UNSUPPORTED
    assert info.reason == "CL_INVALID_VALUE (-30) from Device.get_info"
