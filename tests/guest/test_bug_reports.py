# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Bug reports R8, R9, R10, R11 and R16 (docs/bug-reports.md) reproduced
through the full system (SnpSystem: guest, CPU/RMP, KVM, VMM): each buggy behaviour as
a named guest variant (snpsim.guest.variants) showing the reported symptom, and the
correct behaviour of the default kernel.  Constants: PVALIDATE_FAIL_SIZEMISMATCH 6,
termination (1, 2) GHCB_TERM_PVALIDATE and (0, 0) GHCB_SEV_ES_GEN_REQ, #VC 0x404
(linux-guest.md 1.3, 1.5; hardware-and-ghcb.md 8), SIGBUS 7 / BUS_OBJERR 3."""

import pytest

from snpsim.guest.devmem import devmem_read
from snpsim.guest.kernel import GuestConfig, GuestKernel, __va
from snpsim.guest.set_memory import set_memory_decrypted
from snpsim.guest.sev_vc import UserSignal, native_out
from snpsim.guest.unaccepted_memory import accept_memory, reserve_and_init
from snpsim.guest.variants import KERNEL_VARIANTS
from snpsim.spec.rmp import PVALIDATE_FAIL_SIZEMISMATCH
from snpsim.system import SnpSystem
from snpsim.trace.events import Enter, Leave
from snpsim.trace.record import Recorder, tracing

MiB = 1 << 20
UNIT = 40 * MiB  # a 2 MiB unit of unaccepted RAM in a 64 MiB guest


def pvalidates_in(events, lo, hi):
    """(rmp_psize, (rax, cf)) of each PVALIDATE on a GVA in [lo, hi), in order."""
    out, pending = [], {}
    for e in events:
        if isinstance(e, Enter) and e.name == "PVALIDATE":
            pending[e.ctx] = e.args
        elif isinstance(e, Leave) and e.name == "PVALIDATE":
            a = pending.pop(e.ctx)
            if lo <= a["vaddr"] < hi:
                rax, cf = e.result
                if isinstance(rax, str):  # the trace names IntEnum results
                    rax = int(type(PVALIDATE_FAIL_SIZEMISMATCH)[rax])
                out.append((a["rmp_psize"], (rax, cf)))
    return out


def run(workload, trace=False, **opts):
    s = SnpSystem(memory=64 * MiB, **opts)
    rec = Recorder()
    if trace:
        with tracing(rec):
            out = s.run(workload)
    else:
        out = s.run(workload)
    return s, out, rec.events


def test_variants_are_named_and_unknown_names_fail():
    assert {"R8-buggy", "R9-buggy", "R10-buggy", "R11-buggy", "no-cpa-flush"} <= set(KERNEL_VARIANTS)
    with pytest.raises(ValueError, match="unknown guest variant"):
        _ = GuestKernel(GuestConfig(variant="nope"), boot=None).profile  # type: ignore[arg-type]


# -- R8: a span the RMP holds as 4K pages, validated as 2M ------------------------------------


def accept_unit(kernel, cpu):
    accept_memory(kernel, UNIT, 4096)
    cpu.write(__va(kernel, UNIT + 8192), b"accepted")
    return cpu.read(__va(kernel, UNIT + 8192), 8)


def test_R8_default_validates_4k_span_as_512_4k_pages():
    s, out, ev = run(accept_unit, trace=True)
    assert out.completed, out.describe()
    assert s.kernel.workload_result == b"accepted"
    va = __va(s.kernel, UNIT)
    pv = pvalidates_in(ev, va, va + 2 * MiB)
    # Linux tries the 2M entry, gets FAIL_SIZEMISMATCH (6), then 512 x 4K that succeed
    assert pv[0] == (1, (6, 0))
    assert pv[1:] == [(0, (0, 0))] * 512


def test_R8_buggy_one_2m_pvalidate_fails_sizemismatch_and_terminates():
    s, out, ev = run(accept_unit, trace=True, variant="R8-buggy")
    assert out.termination == (1, 2, "__pval_terminate")
    assert out.vmm.result == "guest-terminated" and (out.vmm.reason_set, out.vmm.reason_code) == (1, 2)
    va = __va(s.kernel, UNIT)
    assert pvalidates_in(ev, va, va + 2 * MiB) == [(1, (6, 0))]
    assert s.kernel.warnings[-1].endswith("action: 1, size: 1, ret: 6, svsm_ret: 0x0")


# -- R9: #VC 0x404 must not be emulated ------------------------------------------------------


def touch_unvalidated(kernel, cpu):
    return cpu.read(__va(kernel, 50 * MiB), 8)  # unaccepted RAM: RMP assigned on fault, not validated


def test_R9_default_vc_0x404_terminates_without_emulation():
    s, out, ev = run(touch_unvalidated, trace=True)
    assert out.termination == (0, 0, "exc_vmm_communication")
    assert "Unsupported exit-code 0x404 in #VC exception" in s.kernel.warnings
    va = __va(s.kernel, 50 * MiB)
    assert pvalidates_in(ev, va, va + 4096) == []  # no emulation / validation step
    assert s.kernel.workload_result is None


def test_R9_buggy_emulation_validates_and_trusts_the_page():
    s, out, ev = run(touch_unvalidated, trace=True, variant="R9-buggy")
    assert out.completed, out.describe()
    va = __va(s.kernel, 50 * MiB)
    # the handler's emulation step validated the faulting page, and the access went on
    assert pvalidates_in(ev, va, va + 4096) == [(0, (0, 0))]
    assert isinstance(s.kernel.workload_result, bytes) and len(s.kernel.workload_result) == 8
    assert out.termination is None


# -- R10: PVALIDATE after sharing ------------------------------------------------------------

FW_CFG_DMA_PORT = 0x518  # QEMU fw_cfg DMA address register, low half (FW_CFG_DMA_IO_BASE + 4)
DMA_DATA = b"fw_cfg DMA ok"


def r10_system(variant=None):
    """A guest page made shared, then a VMM "DMA" into it: the guest writes the page's GPA
    to the fw_cfg DMA port and the VMM writes DMA_DATA there through its RAM mapping."""
    st = {}

    def wl(kernel, cpu):
        gpa = kernel.page_alloc.alloc_page()
        va = __va(kernel, gpa)
        st["gpa"] = gpa
        st["dec"] = set_memory_decrypted(kernel, va, 1)
        native_out(kernel, FW_CFG_DMA_PORT, gpa & 0xFFFFFFFF, 4)
        return cpu.read(va, len(DMA_DATA))

    s = SnpSystem(memory=64 * MiB, variant=variant)
    build = s._build

    def build_with_dma(workload, *rest):
        build(workload, *rest)
        io = s.machine.io_handler

        def io_handler(port, data, direction, size):
            if port == FW_CFG_DMA_PORT and direction == 1:
                s.machine.write_guest_ram(int.from_bytes(data, "little"), DMA_DATA)
                return None
            return io(port, data, direction, size)

        s.machine.io_handler = io_handler

    s._build = build_with_dma
    return s, s.run(wl), st


def test_R10_default_no_pvalidate_after_sharing_dma_succeeds():
    s, out, st = r10_system()
    assert out.completed, out.describe()
    assert st["dec"] == 0
    assert s.kernel.workload_result == DMA_DATA
    ps = s.page_state(st["gpa"])
    assert ps.pte_c_bit is False and not ps.attribute_private
    assert not ps.rmp["assigned"] and not ps.rmp["validated"]


def test_R10_buggy_pvalidate_after_sharing_loses_the_dma():
    s, out, st = r10_system("R10-buggy")
    assert out.completed, out.describe()
    # the PVALIDATE after the PSC(shared) went through the still-encrypted mapping: the
    # page is assigned and validated again while the guest maps it shared ...
    ps = s.page_state(st["gpa"])
    assert ps.pte_c_bit is False
    assert ps.rmp["assigned"] and ps.rmp["validated"] and ps.attribute_private
    # ... so the VMM's DMA lands in memory the guest no longer reads
    assert ps.host_read.startswith(DMA_DATA)
    assert s.kernel.workload_result != DMA_DATA


# -- R11: initialising memory before accepting it -------------------------------------------

NV_GPA = 44 * MiB  # unaccepted RAM
NV_DATA = b"NvVarStore header"


def init_nvstore(kernel, cpu):
    reserve_and_init(kernel, NV_GPA, NV_DATA)
    return cpu.read(__va(kernel, NV_GPA), len(NV_DATA))


def test_R11_default_accept_then_write():
    s, out, _ = run(init_nvstore)
    assert out.completed, out.describe()
    assert s.kernel.workload_result == NV_DATA
    assert not s.kernel.unaccepted.test(NV_GPA // (2 * MiB))


def test_R11_buggy_write_before_accept_faults_vc_0x404():
    s, out, _ = run(init_nvstore, variant="R11-buggy")
    assert out.termination == (0, 0, "exc_vmm_communication")
    assert "Unsupported exit-code 0x404 in #VC exception" in s.kernel.warnings
    assert s.kernel.unaccepted.test(NV_GPA // (2 * MiB))  # never accepted


# -- R16: /dev/mem read of the BIOS area -----------------------------------------------------

BIOS_AREA = 0xFE000


def test_R16_user_devmem_read_of_unvalidated_bios_area_gets_sigbus():
    def wl(kernel, cpu):
        return devmem_read(kernel, BIOS_AREA, 16, user=True)

    s, out, _ = run(wl)
    assert out.completed, out.describe()  # the machine survives
    sig = s.kernel.workload_result
    assert isinstance(sig, UserSignal) and (sig.signo, sig.code) == (7, 3)  # SIGBUS, BUS_OBJERR
    assert s.kernel.warnings[-1] == "Unsupported exit-code 0x404 in #VC exception"


def test_R16_kernel_read_of_unvalidated_bios_area_terminates():
    def wl(kernel, cpu):
        return devmem_read(kernel, BIOS_AREA, 16, user=False)

    s, out, _ = run(wl)
    assert out.termination == (0, 0, "exc_vmm_communication")
    assert s.kernel.warnings[-1] == "Unsupported exit-code 0x404 in #VC exception"
