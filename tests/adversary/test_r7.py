# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""Bug report R7 (docs/bug-reports.md; github.com/AMDESE/AMDSEV/issues/220):
after a malformed SNP guest request, KVM's ``__snp_handle_guest_req`` returned before
reclaiming the response page, which stayed firmware-owned, and the next request crashed
the VM with an RMP fault.  Full system (``SnpSystem.run``), the guest issuing
SVM_VMGEXIT_GUEST_REQUEST through ``snp_issue_guest_request`` on pages from
``alloc_shared_pages``.

Expected values come from the references, not from program output:

* the answer: ``sw_exit_info_2 = (vmm_err << 32) | fw_err`` (hardware-and-ghcb.md 7);
  the firmware rejects a bad message header with SEV_RET_INVALID_PARAM = 0x16
  (include/uapi/linux/psp-sev.h); the guest turns a non-zero answer into -EIO
  (core.c ``snp_issue_guest_request``);
* the invariant of the report: no page is left in the firmware state (RMP Assigned,
  ASID 0, Immutable: APM table 15-35) after a command returns;
* the crash: a host write to a firmware-owned page is a host #PF with X86_PF_RMP (bit 31)
  and X86_PF_WRITE (bit 1) (hardware-and-ghcb.md 1.4); inside KVM it is a host oops and
  KVM_RUN fails with -EFAULT, QEMU stops the VM (docs/host.md model choices).
"""

import errno

import pytest

from snpsim.adversary import VARIANTS
from snpsim.guest.kernel import __pa
from snpsim.guest.sev_core import (
    SnpGuestReq,
    SnpReqData,
    alloc_shared_pages,
    snp_issue_guest_request,
)
from snpsim.spec.sev_guest import SNP_MSG_REPORT_REQ, SNP_MSG_REPORT_RSP, SnpGuestMsgHdr
from snpsim.system import SnpSystem

MEM = 64 << 20
PAGE = 4096
SEV_RET_INVALID_PARAM = 0x16
X86_PF_WRITE, X86_PF_RMP = 1 << 1, 1 << 31
REPORT_DATA = b"snpsim R7 report data".ljust(64, b"\0")
# struct snp_report_resp: status, report_size, 24 reserved, then the report; in the
# report REPORT_DATA is at 0x50 and MEASUREMENT at 0x90 (SNP firmware ABI 56860).
REPORT_OFF = 0x60 + 0x20


def firmware_pages(system):
    """PFNs whose RMP entry is in the firmware state (Assigned, ASID 0, Immutable), other
    than the VM's SNP guest context page, which is a firmware page from
    SNP_LAUNCH_START to SNP_DECOMMISSION (sev.c ``snp_context_create``:
    ``snp_alloc_firmware_page``)."""
    rmp = system.platform.rmp
    ctx = system.kvm.vm(system.machine.s.vmfd).sev.snp_context
    out = []
    for pfn in rmp.assigned_pfns():
        e = rmp.lookup(pfn)
        if e.assigned and e.asid == 0 and e.immutable and pfn != ctx:
            out.append(pfn)
    return out


def request(msg_seqno, *, malformed=False):
    """An SNP_MSG_REPORT_REQ message (header + ``struct snp_report_req``); ``malformed``
    gives it header version 0 (Linux writes MSG_HDR_VER = 1)."""
    payload = REPORT_DATA + bytes(4) + bytes(28)
    hdr = SnpGuestMsgHdr(msg_seqno=msg_seqno, hdr_version=0 if malformed else 1,
                         msg_type=SNP_MSG_REPORT_REQ, msg_sz=len(payload))
    return hdr.encode() + payload


def two_requests(system, log):
    """Guest workload: a malformed request, then a valid one, on the same two shared
    pages; after each, a snapshot of the firmware-state pages and of KVM's response
    page (observer peeks into the platform: test-only)."""
    def workload(kernel, cpu):
        req_va = alloc_shared_pages(kernel, PAGE)
        resp_va = alloc_shared_pages(kernel, PAGE)
        data = SnpReqData(int(__pa(kernel, req_va)), int(__pa(kernel, resp_va)))
        log["gpas"] = (data.req_gpa, data.resp_gpa)
        for name, msg in (("malformed", request(1, malformed=True)), ("valid", request(1))):
            cpu.write(req_va, msg)
            req = SnpGuestReq(input=data)
            ret = snp_issue_guest_request(kernel, req)
            log[name] = (ret, req.exitinfo2, cpu.read(resp_va, PAGE), firmware_pages(system))
    return workload


def run(kvm=None):
    system = SnpSystem(memory=MEM, **({"kvm": kvm} if kvm is not None else {}))
    log = {}
    out = system.run(two_requests(system, log))
    vm = system.kvm.vm(system.machine.s.vmfd)
    return system, vm, log, out


@pytest.mark.bug_report("R7")
def test_fixed_malformed_request_gets_the_firmware_error_and_the_next_one_succeeds():
    system, vm, log, out = run()
    assert out.completed and not system.kvm.oopses
    # the malformed request: the firmware's INVALID_PARAM in bits 31:0, no VMM error
    ret, exitinfo2, resp, fw_pages = log["malformed"]
    assert ret == -errno.EIO and exitinfo2 == SEV_RET_INVALID_PARAM
    assert resp == bytes(PAGE)  # no response message written
    # ... and the response page is hypervisor-owned again when the command returns
    assert fw_pages == []
    assert vm.sev.guest_resp_pfn is not None
    assert not system.platform.rmp.lookup(vm.sev.guest_resp_pfn).assigned
    # the valid request succeeds: a REPORT_RSP with the next sequence number
    ret, exitinfo2, resp, fw_pages = log["valid"]
    assert (ret, exitinfo2) == (0, 0) and fw_pages == []
    hdr = SnpGuestMsgHdr.decode(resp)
    assert (hdr.msg_type, hdr.msg_seqno, hdr.hdr_version) == (SNP_MSG_REPORT_RSP, 2, 1)
    assert int.from_bytes(resp[0x60:0x64], "little") == 0  # status
    assert resp[REPORT_OFF + 0x50:REPORT_OFF + 0x90] == REPORT_DATA
    assert resp[REPORT_OFF + 0x90:REPORT_OFF + 0xC0] == system.digest  # launch measurement
    # invariant over the whole RMP at the end, and nothing leaked
    assert firmware_pages(system) == [] and not system.kvm.allocator.leaked
    assert system.platform.counters.get("SNP_PAGE_RECLAIM") == 2


@pytest.mark.bug_report("R7")
def test_buggy_response_page_stays_firmware_owned_and_the_next_request_faults():
    with VARIANTS["R7"].installed():
        system, vm, log, out = run(VARIANTS["R7"].kvm)
    # the malformed request: the same firmware error reaches the guest ...
    ret, exitinfo2, _resp, fw_pages = log["malformed"]
    assert ret == -errno.EIO and exitinfo2 & 0xFFFFFFFF == SEV_RET_INVALID_PARAM
    # ... but the response page is left in the firmware state: the report's invariant fails
    resp_pfn = vm.sev.guest_resp_pfn
    assert fw_pages == [resp_pfn]
    e = system.platform.rmp.lookup(resp_pfn)
    assert e.assigned and e.asid == 0 and e.immutable and e.owner == "firmware"
    # the next request never returns to the guest: KVM's host write to the page (clearing
    # the response page in snp_setup_guest_buf) takes a host #PF with the RMP bit
    assert "valid" not in log
    [oops] = system.kvm.oopses
    assert f"spa={resp_pfn * PAGE:#x}" in oops
    code = int(oops.split("error_code=")[1].split()[0], 16)
    assert code & X86_PF_RMP and code & X86_PF_WRITE
    # a host oops inside KVM: KVM_RUN fails with -EFAULT, the VMM stops the VM
    assert out.vmm.result == "internal-error" and not out.completed
    assert out.termination is None and out.panic is None
    assert "error: kvm run failed Bad address" in out.vmm.errors  # strerror(EFAULT)
    assert firmware_pages(system) == [resp_pfn]
    assert system.platform.counters.get("SNP_PAGE_RECLAIM") is None
