# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""A segmented RMP with one segment missing under the host's RAM.

What it shows: ``Scenario.host_init`` boots the host through SNP initialisation with a
segmented RMP of 1 GiB segments (RMP_CFG shift 30).  The BIOS left segment 1 -- SPA
1 GiB to 2 GiB, where the model's host allocator hands out guest_memfd pages -- out of
the RMP segment table.  Linux checks only that the last segment below the end of RAM
reaches it, so it accepts the table, clears the RMP, enables SNP and runs SNP_INIT_EX.
The guest's pages then come from memory the RMP does not cover.

Expected outcome (sources: Linux arch/x86/virt/svm/sev.c v6.14+
``setup_segmented_rmptable``; APM vol 2 15.36.4, pages not covered are
hypervisor-owned and RMPREAD/RMPUPDATE answer FAIL_INPUT; KVM sev.c ``snp_launch_start``:
the guest context page comes from ``snp_alloc_firmware_page``, whose RMPUPDATE to the
Firmware state fails on an uncovered page, so ``snp_context_create`` gives NULL and
KVM_SEV_SNP_LAUNCH_START answers -ENOTTY; QEMU reports it and exits):

* ``host_log`` has "SEV-SNP: Segmented RMP using 1GB segments" and no refusal line; the
  RMP's own first page is firmware-owned after SNP_INIT_EX;
* the launch fails at its first page from the missing segment -- the context page:
  QEMU's "sev_snp_launch_start: SNP_LAUNCH_START ret=-25 fw_error=0", the run ends
  ``qemu-exit`` before any vCPU ran (exit status 1);
* a page of the missing segment reads hypervisor-owned, and an RMPUPDATE of it is
  FAIL_INPUT (1).

Run it: ``snpsim run examples/rmp_segment_hole.py``.
"""

from snpsim.api import RmpConfig, Scenario

GiB = 1 << 30
RAM = 64 * GiB
RMP_BASE = 256 * GiB          # bookkeeping + segment table, covered by segment 256

segments, spa = {}, RMP_BASE + (1 << 20)
for index in [0, *range(2, 64), 256]:          # segment 1 is missing
    segments[index] = (spa, 1)                 # 1 GiB mapped: 4 MiB of entries
    spa += (GiB >> 12) * 16

scenario = Scenario("RMP segment missing under RAM", memory=64 << 20)
scenario.host_init(RmpConfig.segmented(RMP_BASE, 30, segments), ram=RAM)
data = scenario.data


@scenario.after
def look(h):
    data["host_log"] = h.host_log
    data["rmp_base_owner"] = h.rmp(RMP_BASE)["owner"]
    data["hole_owner"] = h.rmp(GiB + 0x5000)["owner"]
    data["rmpupdate_in_hole"] = h.rmpupdate(GiB + 0x5000, assigned=1, asid=9, gpa=0)
    data["vmm_errors"] = h.vmm_errors
