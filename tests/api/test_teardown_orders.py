# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""VM teardown in every order the kernel allows, checked page by page (issue 14, item 3),
through the public API only.

Sources:
- virt/kvm/kvm_main.c ``kvm_vm_release`` / ``kvm_vcpu_release`` -> ``kvm_put_kvm``; the VM
  fd, each vCPU fd and each guest_memfd hold a reference, the last one runs
  ``kvm_destroy_vm``;
- virt/kvm/guest_memfd.c ``kvm_gmem_release`` (zap and unbind, then drop the VM
  reference), the inode's eviction freeing every folio through ``kvm_gmem_free_folio``
  -> ``kvm_arch_gmem_invalidate`` = arch/x86/kvm/svm/sev.c ``sev_gmem_invalidate``
  (``rmp_make_shared``, 2M when the whole 2 MiB entry is freed, ``snp_rmptable_psmash``
  first when only part of it is); ``kvm_gmem_punch_hole`` for fallocate(PUNCH_HOLE);
- arch/x86/kvm/svm/sev.c ``sev_free_vcpu`` (VMSA: ``kvm_rmp_make_shared``),
  ``sev_vm_destroy`` -> ``snp_decommission_context`` (SNP_DECOMMISSION, then the guest
  context page through drivers/crypto/ccp/sev-dev.c ``snp_free_firmware_page`` ->
  ``snp_reclaim_pages``: SNP_PAGE_RECLAIM + ``rmp_make_shared``) -> ``sev_asid_free``;
- arch/x86/virt/svm/sev.c ``rmpupdate`` retries for as long as RMPUPDATE returns
  FAIL_OVERLAP (4): a 4K update inside a 2M entry that nobody PSMASHes never ends (APM
  vol 3, RMPUPDATE: FAIL_OVERLAP for a 4K update inside an assigned 2M entry).
"""

import errno

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snpsim.api import Scenario, ScenarioError, TeardownCheck, hooked

MiB = 1 << 20


def _guest_with_every_kind_of_page(**kw):
    """A guest holding 4K and 2M pages, private and shared, validated and not.  The KVM
    profile gives guest_memfd 2 MiB folios (knob ``gmem_max_order`` 9), so an accepted
    2 MiB unit gets a 2M RMP entry (``sev_gmem_prepare``)."""
    sc = Scenario("teardown orders", memory="64M", vcpus=1, kvm_knobs={"gmem_max_order": 9}, **kw)
    d = sc.data

    @sc.guest(vcpu=0)
    def pages(g):
        a = g.alloc_page()
        g.write(a, b"private 4K")
        d["private_4k_validated"] = g.pa(a)
        b = g.alloc_page()
        d["rescind_4k"] = g.pvalidate(b, "4K", False)
        d["private_4k_unvalidated"] = g.pa(b)
        c = g.alloc_page()
        d["decrypt_4k"] = g.set_memory_decrypted(c, 1)
        d["shared_4k"] = g.pa(c)
        u = g.unaccepted_gpa()
        g.accept_memory(u, 2 * MiB)
        d["private_2m_validated"] = u
        u = g.unaccepted_gpa()
        g.accept_memory(u, 2 * MiB)
        d["rescind_2m"] = g.pvalidate(g.va(u), "2M", False)
        d["private_2m_unvalidated"] = u
        u = g.unaccepted_gpa()
        g.accept_memory(u, 2 * MiB)
        d["decrypt_2m"] = g.set_memory_decrypted(g.va(u), 512)
        d["shared_2m"] = u

    return sc, d


def _states(h, d):
    out = {}
    for k in ("private_4k_validated", "private_4k_unvalidated", "shared_4k",
              "private_2m_validated", "private_2m_unvalidated", "shared_2m"):
        spa = h.spa(d[k])
        e = h.rmp(spa) if spa is not None else {"owner": "hypervisor", "pagesize": 0, "validated": False}
        out[k] = (spa, e["owner"], e["pagesize"], e["validated"])
    return out


def _run_teardown(order, sc=None, d=None, hooks=None):
    if sc is None:
        sc, d = _guest_with_every_kind_of_page()

    @sc.after
    def tear_down(h):
        d["before"] = _states(h, d)
        d["held_before"] = h.check_teardown()
        with hooked(hooks or {}):
            d["closes"] = h.teardown(order)
        d["after"] = {k: (spa, h.rmp(spa)["owner"] if spa is not None else None)
                      for k, (spa, *_rest) in d["before"].items()}
        d["check"] = h.check_teardown()
        d["closes_again"] = h.teardown()
        d["counters"] = dict(h.platform.counters)

    r = sc.run()
    assert r.errors == [] and r.completed
    return r, d


@pytest.mark.parametrize("order", [None, "exit", "vm-first", "gmem-first", "punch-first",
                                   ("vcpus", "vm", "gmem", "kvm"), ("kvm", "gmem", "vm", "vcpus")])
def test_every_page_is_reclaimed_in_every_allowed_order(order):
    r, d = _run_teardown(order)
    before = d["before"]
    # The page mix the test needs: APM vol 2 RMP entry fields as PVALIDATE/RMPUPDATE leave them.
    assert d["rescind_4k"] == (0, 0) and d["rescind_2m"] == (0, 0)
    assert d["decrypt_4k"] == 0 and d["decrypt_2m"] == 0
    assert before["private_4k_validated"][1:] == ("guest", 0, True)
    assert before["private_4k_unvalidated"][1:] == ("guest", 0, False)
    assert before["private_2m_validated"][1:] == ("guest", 1, True)
    assert before["private_2m_unvalidated"][1:] == ("guest", 1, False)
    assert before["shared_4k"][1] == "hypervisor" and before["shared_2m"][1] == "hypervisor"
    held: TeardownCheck = d["held_before"]
    assert not held.clean and not held.vm_destroyed
    # Two 2M entries (1024 pages), the private 4K pages, the VMSA, at the very least.
    assert len(held.assigned) >= 2 * 512 + 2 + 1
    # The guest context page is a firmware page while the VM lives (snp_context_create).
    assert len(held.firmware) == 1
    # Afterwards: every close returned 0, every page of the guest is the hypervisor's,
    # the RMP holds nothing for the ASID, nothing leaked, nothing left allocated.
    # five closes, and for "punch-first" first one fallocate result per guest_memfd (two)
    n = 5 + (2 if order == "punch-first" else 0)
    assert [ret for _fd, ret in d["closes"]] == [0] * len(d["closes"]) and len(d["closes"]) == n
    assert all(owner == "hypervisor" for spa, owner in d["after"].values() if spa is not None)
    check: TeardownCheck = d["check"]
    assert check.clean, check.problems()
    assert check.assigned == () and check.firmware == () and check.freed_assigned == ()
    assert check.leaked == () and check.allocated == () and check.open_fds == ()
    assert check.vm_destroyed and check.asid_freed and check.asid == held.asid
    assert d["closes_again"] == []
    assert r.host.assigned_to_guest() == 0
    assert d["counters"]["SNP_DECOMMISSION"] == 1
    assert d["counters"]["SNP_PAGE_RECLAIM"] == 1  # the context page


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.permutations(["kvm", "vm", "vcpus", "gmem"]), punch=st.booleans(),
       vcpus=st.sampled_from([1, 2]))
def test_any_order_of_closes_reclaims_everything(steps, punch, vcpus):
    # Every permutation of the closes is an order a process can produce (each file's
    # reference on the VM makes the last close destroy it, whichever it is), with or
    # without a discard of all guest_memfd memory first; one VMSA per vCPU.
    sc = Scenario("any order", memory="32M", vcpus=vcpus)
    d = sc.data

    @sc.guest(vcpu=0)
    def page(g):
        g.write(g.alloc_page(), b"private")

    @sc.after
    def tear_down(h):
        d["closes"] = h.teardown((["punch"] if punch else []) + list(steps))
        d["check"] = h.check_teardown()

    r = sc.run()
    assert r.errors == [] and r.completed
    # one result per syscall: each close, and each guest_memfd's punch when there is one
    assert [ret for _fd, ret in d["closes"]] == [0] * (4 + vcpus + (2 if punch else 0))
    assert d["check"].clean, d["check"].problems()


def test_punch_first_frees_the_private_pages_before_any_close():
    r, d = _run_teardown("punch-first")
    calls = d["check"].syscalls
    assert [c[0] for c in calls[:2]] == ["fallocate", "fallocate"]  # "pc.ram", "pc.bios"
    assert all(ret == 0 for _c, _fd, ret in calls)


def test_vm_fd_closed_while_guest_memfd_is_open_keeps_the_vm():
    # Closing the VM and vCPU fds does not destroy the VM: each guest_memfd holds a
    # reference (kvm_gmem_create: kvm_get_kvm).  The guest's private pages stay
    # assigned; the guest context is still bound; a later "gmem" step finishes it.
    sc, d = _guest_with_every_kind_of_page()

    @sc.after
    def tear_down(h):
        d["first"] = h.teardown(("vm", "vcpus"))
        d["mid"] = h.check_teardown()
        d["second"] = h.teardown(("gmem",))
        d["end"] = h.check_teardown()

    r = sc.run()
    assert r.errors == []
    mid = d["mid"]
    assert [ret for _fd, ret in d["first"]] == [0, 0]
    assert not mid.vm_destroyed and not mid.asid_freed
    assert len(mid.assigned) >= 2 * 512 + 2 and len(mid.firmware) == 1
    assert len(mid.open_fds) == 3  # /dev/kvm, two guest_memfds
    assert [ret for _fd, ret in d["second"]] == [0, 0]
    end = d["end"]
    assert end.vm_destroyed and end.assigned == () and end.firmware == () and end.allocated == ()
    assert end.open_fds == (d["first"][0][0] - 1,)  # /dev/kvm, never closed
    assert end.problems() == [f"fds still open: {end.open_fds[0]}"]


def test_teardown_of_part_of_a_2m_entry_psmashes_it_first():
    # A discard of one 4 KiB page inside the 2M private entry before the closes: KVM
    # splits the folio and PSMASHes the 2M RMP entry (sev_gmem_invalidate ->
    # snp_rmptable_psmash) before the 4K rmp_make_shared; everything ends reclaimed.
    sc, d = _guest_with_every_kind_of_page()
    psmash = []

    @sc.after
    def tear_down(h):
        d["spa"] = h.spa(d["private_2m_validated"])
        before = h.platform.counters.get("PSMASH", 0)
        # (a scenario's own hooks are off once the run ended: hooked() for the teardown)
        with hooked({"snp_rmptable_psmash": lambda orig, kvm, pfn: psmash.append(pfn) or orig(kvm, pfn)}):
            d["closes"] = h.teardown([("punch", d["private_2m_validated"] + 0x5000, 0x1000), "exit"])
        d["psmashes"] = h.platform.counters.get("PSMASH", 0) - before
        d["check"] = h.check_teardown()

    r = sc.run()
    assert r.errors == []
    assert psmash == [(d["spa"] >> 12) + 5] and d["psmashes"] == 1
    assert d["check"].clean, d["check"].problems()
    first, *closes = d["check"].syscalls
    assert first[0::2] == ("fallocate", 0) and first[1] in [fd for _c, fd, _r in closes]


def test_buggy_host_without_psmash_spins_and_the_check_reports_it():
    # A host whose snp_rmptable_psmash does nothing: the 4K RMPUPDATE inside the 2M
    # entry gets FAIL_OVERLAP for ever (rmpupdate retries without bound) -- the discard
    # never returns, so nothing after it runs, and the whole 2M entry stays the guest's.
    sc, d = _guest_with_every_kind_of_page()

    @sc.after
    def tear_down(h):
        with hooked({"snp_rmptable_psmash": lambda orig, kvm, pfn: 0}):
            d["closes"] = h.teardown([("punch", d["private_2m_validated"] + 0x5000, 0x1000), "exit"])
        d["check"] = h.check_teardown()

    r = sc.run()
    assert r.errors == []
    check = d["check"]
    assert d["closes"] == []
    assert check.livelock is not None and check.livelock.startswith("rmpupdate: ")
    assert check.syscalls[-1][2] is None
    assert not check.clean and not check.vm_destroyed
    assert len(check.assigned) >= 512
    assert check.problems()[0].startswith("teardown spun: rmpupdate")


def test_buggy_host_that_skips_sev_gmem_invalidate_frees_guest_pages_still_assigned():
    # A host whose guest_memfd folio free skips the RMP update: every private page goes
    # back to the allocator still assigned to the guest's ASID.
    sc, d = _guest_with_every_kind_of_page()
    r, d = _run_teardown(None, sc, d, hooks={"sev_gmem_invalidate": lambda orig, kvm, start, end: None})
    check = d["check"]
    assert check.vm_destroyed and check.asid_freed  # KVM itself noticed nothing
    assert not check.clean
    assert len(check.assigned) >= 2 * 512 + 2  # both 2M entries, the private 4K pages
    assert set(check.assigned) <= set(check.freed_assigned)
    assert check.leaked == () and check.allocated == ()
    problems = check.problems()
    assert any("still assigned to the ASID" in p for p in problems)
    assert any("freed while assigned in the RMP" in p for p in problems)


def test_teardown_mid_run_from_a_schedule_step():
    # The VMM exits at the guest's first exit to userspace: the vCPU thread is back in
    # QEMU (its KVM_RUN ioctl returned), as every vCPU thread is before the kernel closes
    # a dying process's files.  Pages the guest holds at that moment are all reclaimed.
    from snpsim.api import do, leave, run
    from snpsim.spec.kvm_uapi import KVM_RUN

    sc, d = _guest_with_every_kind_of_page()
    sc.schedule(run(0, until=leave("kvm_vcpu_ioctl", where=lambda a: a["request"] == KVM_RUN)),
                do(lambda h: d.setdefault("closes", h.teardown("gmem-first"))),
                do(lambda h: d.setdefault("check", h.check_teardown())))
    r = sc.run()
    assert r.errors == []
    assert not r.completed and "shared_2m" not in d  # the guest was stopped early
    assert [ret for _fd, ret in d["closes"]] == [0] * 5
    assert d["check"].clean, d["check"].problems()


def test_vcpu_fd_closed_while_its_thread_is_in_kvm_run_is_released_when_kvm_run_returns():
    # The VMM closes every fd while vCPU 0 is held inside the guest (inside KVM_RUN):
    # close() drops the fd, but the ioctl's file reference (fdget) keeps the vCPU file,
    # so kvm_vcpu_release -- the VM's last reference -- runs only when KVM_RUN returns
    # (fput).  Until then the VM lives (its VMSA, in use, is still the guest's); once the
    # guest's next exit ends KVM_RUN, kvm_destroy_vm reclaims everything.  QEMU's
    # following KVM_SET_MEMORY_ATTRIBUTES on the closed VM fd gets EBADF.
    from snpsim.api import do, enter, run

    sc, d = _guest_with_every_kind_of_page()
    sc.schedule(run(0, until=enter("set_memory_decrypted")),
                do(lambda h: d.setdefault("closes", h.teardown())),
                do(lambda h: d.setdefault("mid", h.check_teardown())))

    @sc.after
    def end(h):
        d["end"] = h.check_teardown()

    r = sc.run()
    assert r.errors == []
    assert [ret for _fd, ret in d["closes"]] == [0] * 5
    mid = d["mid"]
    assert not mid.vm_destroyed and mid.open_fds == ()
    assert len(mid.assigned) == 1 and len(mid.firmware) == 1  # the VMSA, the context page
    assert d["end"].clean, d["end"].problems()
    assert any("EBADF" in e for e in r.outcome.vmm.errors)


def test_bad_orders_are_scenario_errors():
    sc, d = _guest_with_every_kind_of_page()
    errors = []

    @sc.after
    def tear_down(h):
        for order in ("backwards", ("vm", "sideways"), [("punch", 0xFFFF_0000_0000, 4096)],
                      [("punch", 1)]):
            try:
                h.teardown(order)
            except ScenarioError as e:
                errors.append(str(e))
        d["closes"] = h.teardown([123456])

    r = sc.run()
    assert r.errors == [] and len(errors) == 4
    assert d["closes"] == [(123456, -errno.EBADF)]


def test_teardown_type_errors_repeated_steps_and_punch_results():
    # teardown(42): not an order -> ScenarioError (never a raw TypeError); a step list
    # naming "vm" twice closes the VM fd twice, and close(2) of a closed fd is -EBADF
    # (fs/file.c close_fd: no file at that fd -> -EBADF); a punch step's fallocate
    # result comes back in the list, in order, before the closes that follow it.
    sc, d = _guest_with_every_kind_of_page()
    errors = []

    @sc.after
    def tear_down(h):
        for order in (42, 3.5, b"exit", ["vm", None], ["vm", 2.0], [True]):
            try:
                h.teardown(order)
            except ScenarioError:
                errors.append(order)
        d["punch"] = h.teardown([("punch", d["private_4k_validated"] & ~0xFFF, 0x1000)])
        d["vm_twice"] = h.teardown(["vm", "vm"])
        d["rest"] = h.teardown()
        d["check"] = h.check_teardown()

    r = sc.run()
    assert r.errors == [] and len(errors) == 6
    assert len(d["punch"]) == 1 and d["punch"][0][1] == 0
    (fd1, ret1), (fd2, ret2) = d["vm_twice"]
    assert fd1 == fd2 and ret1 == 0 and ret2 == -errno.EBADF == -9
    assert all(ret == 0 for _fd, ret in d["rest"]) and fd1 not in [fd for fd, _r in d["rest"]]
    assert d["check"].clean, d["check"].problems()


# ---- firmware pages: the guest context page and the guest-request response page ------------


def _report_request(hdr_version: int) -> bytes:
    """An SNP_MSG_REPORT_REQ message (``struct snp_guest_msg_hdr`` + ``struct
    snp_report_req``; Linux writes header version 1)."""
    from snpsim.spec.sev_guest import SNP_MSG_REPORT_REQ, SnpGuestMsgHdr

    payload = b"teardown".ljust(64, b"\0") + bytes(32)
    return SnpGuestMsgHdr(msg_seqno=1, hdr_version=hdr_version, msg_type=SNP_MSG_REPORT_REQ,
                          msg_sz=len(payload)).encode() + payload


def _guest_request_scenario(hdr_version, *, skip_cleanup_on_error=False):
    sc = Scenario("guest request then teardown", memory="64M")
    d = sc.data

    @sc.guest
    def request(g):
        req, resp = g.call("alloc_shared_pages", 4096), g.call("alloc_shared_pages", 4096)
        g.write(req, _report_request(hdr_version))
        d["answer"] = g.guest_request(req, resp)

    if skip_cleanup_on_error:  # bug report R7 (AMDESE/AMDSEV#220): no reclaim after an error
        fw = []
        sc.hook("issue_snp_guest_request", lambda orig, kvm, data: fw.append(orig(kvm, data)) or fw[-1])
        sc.hook("snp_cleanup_guest_buf", lambda orig, kvm, data: 0 if fw[-1][0] else orig(kvm, data))

    @sc.after
    def tear_down(h):
        d["resp_pfn"] = h.vm.sev.guest_resp_pfn
        d["resp_before"] = h.rmp(d["resp_pfn"] << 12)
        d["reclaims"] = h.platform.counters.get("SNP_PAGE_RECLAIM", 0)
        h.teardown()
        d["reclaims"] = h.platform.counters.get("SNP_PAGE_RECLAIM", 0) - d["reclaims"]
        d["check"] = h.check_teardown()

    r = sc.run()
    assert r.errors == []
    return d


def test_guest_request_pages_are_freed_at_teardown():
    d = _guest_request_scenario(1)
    assert d["answer"] == (0, 0)
    assert d["resp_before"]["owner"] == "hypervisor"  # model: reclaimed after each command
    assert d["check"].clean, d["check"].problems()
    assert d["reclaims"] == 1  # only the guest context page


def test_response_page_left_firmware_owned_is_reclaimed_at_teardown():
    # R7's handler leaves KVM's response page Firmware after a failed command
    # (SEV_RET_INVALID_PARAM 0x16 for header version 0; the guest sees -EIO);
    # snp_guest_req_cleanup gives it back with snp_free_firmware_page (v6.11+).
    d = _guest_request_scenario(0, skip_cleanup_on_error=True)
    assert d["answer"] == (-errno.EIO, 0x16)
    assert d["resp_before"]["owner"] == "firmware"
    assert d["reclaims"] == 2  # the response page and the guest context page
    assert d["check"].clean, d["check"].problems()


def test_a_context_page_never_reclaimed_is_reported():
    # A host that skips snp_free_firmware_page: after SNP_DECOMMISSION the guest context
    # page stays Firmware in the RMP and allocated.
    sc = Scenario("context page kept", memory="64M")
    d = sc.data

    @sc.after
    def tear_down(h):
        ctx = h.vm.sev.snp_context
        d["ctx"] = ctx
        d["before"] = h.rmp(ctx << 12)
        with hooked({"snp_free_firmware_page": lambda orig, kvm, pfn: None}):
            h.teardown()
        d["check"] = h.check_teardown()

    r = sc.run()
    assert r.errors == []
    check = d["check"]
    assert d["before"]["owner"] == "firmware" and d["before"]["immutable"]
    assert check.firmware == (d["ctx"],) and check.allocated == (d["ctx"],)
    assert check.vm_destroyed and check.asid_freed and check.assigned == ()
    assert [p.split(":")[0] for p in check.problems()] == [
        "1 firmware page(s) not reclaimed", "1 page(s) allocated and never freed"]
