# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A planted host bug for the explore tests: KVM answers a GHCB Page State Change
request to *shared* as done without converting anything (no KVM_HC_MAP_GPA_RANGE exit,
so no attribute change and no RMPUPDATE): ``cur_entry`` moved past ``end_entry`` and
``sw_exit_info_2`` 0.  Requests to private are KVM's own.  Linux does not check the
entries' ``cur_page`` (linux-guest.md 5.2), so ``set_memory_decrypted`` returns 0 on a
page that is still private: invariant ``psc-honoured``."""

from snpsim.api import function
from snpsim.explore import target
from snpsim.spec.psc import PSC_ENTRY_SIZE, PSC_HDR_SIZE, VMGEXIT_PSC_OP_SHARED, PscEntry, PscHdr

scenario, secrets = target("seed")


@scenario.hook("snp_begin_psc")
def done_without_converting(original, vcpu):
    sa, host = vcpu.sev_es.ghcb_sa, vcpu.kvm.host
    hdr = PscHdr.decode(sa.read(host, 0, PSC_HDR_SIZE))
    first = PscEntry.decode(sa.read(host, PSC_HDR_SIZE + hdr.cur_entry * PSC_ENTRY_SIZE,
                                    PSC_ENTRY_SIZE))
    if first.operation != VMGEXIT_PSC_OP_SHARED:
        return original(vcpu)
    sa.write(host, 0, PscHdr(hdr.end_entry + 1, hdr.end_entry, hdr.reserved).encode())
    function("snp_complete_psc")(vcpu, 0)
    return 1
