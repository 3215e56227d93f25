# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""kexec and kdump while another CPU converts pages (issue 14 item 5), on the fake host
with a PAUSE exit so that the CPUs interleave by a seeded scheduler.

kexec (arch/x86/kernel/reboot.c ``native_machine_shutdown``): ``snp_kexec_begin`` runs
while the other CPUs still run; ``set_memory_enc_stop_conversion`` takes
``mem_enc_lock`` for write, waiting for the conversion in flight (arch/x86/mm/pat/
set_memory.c, v6.11+; a queued writer makes ``down_read_trylock`` fail, kernel/locking/
rwsem.c ``RWSEM_READ_FAILED_MASK``), and every later conversion returns -EBUSY; nothing
is left shared.  kdump (arch/x86/kernel/crash.c at 01f492e1 ``native_machine_crash_shutdown``):
the other CPUs are shot down by NMI first, then ``snp_kexec_begin`` only tries the lock
(``oops_in_progress``): the stopped CPU still holds it for read, so the kernel warns
"Failed to stop shared<->private conversions" and unshares anyway."""

import errno

import pytest
from guest_fakehost import SmpFakeHost

from snpsim.guest.kernel import GuestConfig, __va
from snpsim.guest.kexec import __crash_kexec, kernel_kexec
from snpsim.guest.set_memory import set_memory_decrypted
from snpsim.guest.smp import cpu_relax

PAGES = 12


def converting_ap(kernel, cpu):
    """The AP's work: make PAGES pool pages shared one by one; their set_memory_decrypted
    results."""
    out = []
    for _ in range(PAGES):
        gpa = kernel.page_alloc.alloc_page()
        kernel.ap_pages.append(gpa)
        out.append(set_memory_decrypted(kernel, __va(kernel, gpa), 1))
    return out


def bsp_after_ap_starts(end):
    """The BSP's work: wait until the AP is inside a conversion (holds mem_enc_lock for
    read), then ``end(kernel)``."""
    def wl(kernel, cpu):
        while not kernel.mem_enc_readers.get(1):
            assert kernel.ap_state.get(1) != "done", "the AP finished before the BSP looked"
            cpu_relax(kernel)
        end(kernel)
    return wl


def run(end, seed):
    h = SmpFakeHost(GuestConfig(nr_cpus=2, coherency_sfw_no=True), workload=bsp_after_ap_starts(end))
    h.kernel.ap_pages = []
    h.kernel.ap_workloads[1] = converting_ap
    return h, h.run_smp(seed)


@pytest.mark.parametrize("seed", range(4))
def test_kexec_waits_for_the_conversion_in_flight_then_refuses_new_ones(seed):
    h, out = run(kernel_kexec, seed)
    k = h.kernel
    assert out == "halted", (out, k.warnings)
    assert k.kexec == "kexec" and k.warnings == []
    results = k.ap_results[1]
    # the conversion the BSP saw in flight finished (0); once the writer queued, every
    # later one was refused (RWSEM_FLAG_WAITERS fails down_read_trylock)
    assert results[0] == 0 and results[-1] == -errno.EBUSY
    assert set(results) == {0, -errno.EBUSY}
    assert results == sorted(results, reverse=True)  # all the 0s come before the -EBUSYs
    assert k.mem_enc_readers == {} and k.mem_enc_stopped
    # everything the AP shared is private and validated again
    rmp = h.p.rmp
    for gpa in k.ap_pages:
        e = rmp.lookup(h.npt.lookup(gpa >> 12).pfn)
        assert e.assigned and e.validated, hex(gpa)


@pytest.mark.parametrize("seed", range(4))
def test_kdump_stops_the_converting_cpu_and_only_warns(seed):
    h, out = run(__crash_kexec, seed)
    k = h.kernel
    assert out == "halted", (out, k.warnings)
    assert k.kexec == "kdump"
    assert k.warnings == ["Failed to stop shared<->private conversions"]
    assert k.ap_state[1] == "stopped"
    assert k.mem_enc_readers == {1: 1}  # the NMI stopped it inside its conversion
    assert 1 not in k.ap_results  # its work never finished
