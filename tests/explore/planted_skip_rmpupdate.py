# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A planted host bug for the explore tests: KVM frees guest_memfd pages without the
RMPUPDATE back to hypervisor-owned (``sev_gmem_invalidate`` does nothing), on the seed
target.  A conversion to shared then leaves the page assigned to the guest in the RMP
while KVM's attribute says shared (``psc-honoured``)."""

from snpsim.explore import target

scenario, secrets = target("seed")


@scenario.hook("sev_gmem_invalidate")
def skip_rmpupdate(original, kvm, start, end):
    return None  # the planted bug: no rmp_make_shared for the freed pages
