# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A VMM that converts only part of a range, and the guest check that stops it.

What it shows: the guest makes two pages shared with one ``set_memory_decrypted``
call, i.e. one Page State Change request for both.  KVM passes the range to the VMM
(KVM_EXIT_HYPERCALL, KVM_HC_MAP_GPA_RANGE).  The VMM here is QEMU with one function
replaced through a hook: its ``kvm_handle_hc_map_gpa_range`` converts only the first
page and reports failure for the request.  The QEMU profile writes that result into
``run->hypercall.ret`` (the knob ``write_hypercall_ret``: the "i386/kvm: Set return value
after handling KVM_EXIT_HYPERCALL" patch), so the error reaches KVM instead of
stopping the VM.

Expected outcome (sources: Linux arch/x86/kvm/svm/sev.c ``snp_complete_one_psc``: a
non-zero ``hypercall.ret`` ends the request with VMGEXIT_PSC_ERROR_GENERIC, i.e.
``sw_exit_info_2`` = 0x100 << 32; Linux arch/x86/coco/sev/core.c ``vmgexit_psc`` and
``__set_pages_state``: any PSC error is fatal, GHCB spec 0.2 "Termination Request",
reason set 1 = SEV_TERM_SET_LINUX, code 1 = GHCB_TERM_PSC):

* the guest does not go on with a half-converted range: it asks to be terminated
  (reason set 1, code 1, from ``__set_pages_state``); the run does not complete
  (exit status 1) and the line after ``set_memory_decrypted`` never runs;
* the guest's warning (the summary's ``warnings``) carries the answer it got,
  exit_info_2 = 0x10000000000;
* the first page's attribute is shared, the second page is still private.

The same hook with mainline QEMU (no ``write_hypercall_ret``) makes QEMU itself stop
the VM: ``kvm_arch_handle_exit`` returns the error and the run ends "internal-error".

Run it: ``snpsim run examples/lying_vmm.py``.
"""

from snpsim.api import Scenario, function

scenario = Scenario("a VMM that converts part of a range", memory="64M", vcpus=1,
                    qemu_knobs={"write_hypercall_ret": True})
data = scenario.data

EINVAL = 22  # the errno the lying VMM reports


@scenario.guest(vcpu=0)
def share_two_pages(g):
    first, second = g.alloc_page(), g.alloc_page()
    if second != first + 4096:             # the allocator hands out pages in order
        raise RuntimeError("the two pages are not contiguous")
    data["gpa"] = g.pa(first)
    data["decrypted"] = g.set_memory_decrypted(first, 2)   # one PSC for two pages
    data["went_on"] = True                  # not reached: the guest terminates first


@scenario.hook("kvm_handle_hc_map_gpa_range")
def convert_only_the_first_page(original, cpu, run):
    gpa, npages, attrs = run.hypercall.args[0], run.hypercall.args[1], run.hypercall.args[2]
    if npages < 2:
        return original(cpu, run)        # single pages: QEMU's own answer
    to_private = bool(attrs & 0x10)      # KVM_MAP_GPA_RANGE_ENCRYPTED
    data["asked"] = {"gpa": gpa, "pages": npages, "to_private": to_private}
    data["converted_first"] = function("kvm_convert_memory")(cpu.kvm_state, gpa, 4096,
                                                              to_private)
    return -EINVAL                       # the rest is never converted


@scenario.after
def look(h):
    gpa = data["gpa"]
    data["first_private"] = h.page(gpa).attribute_private
    data["second_private"] = h.page(gpa + 4096).attribute_private
