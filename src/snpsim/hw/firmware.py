# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""The SNP firmware (AMD-SP) commands used at launch: SNP_LAUNCH_START, SNP_LAUNCH_UPDATE,
SNP_LAUNCH_FINISH; and, for SEV / SEV-ES guests, LAUNCH_START, LAUNCH_UPDATE_DATA,
LAUNCH_UPDATE_VMSA, LAUNCH_MEASURE and LAUNCH_FINISH (minimal: encrypt in place, digest).

LAUNCH_UPDATE takes a page that KVM has already made assigned and Immutable in the RMP
(``rmp_make_private(pfn, gpa, 4K, asid, immutable=true)``), measures it into the launch
digest, encrypts it in place with the guest's key (ZERO pages are zero-filled first,
SECRETS and CPUID pages are filled by the firmware in hardware; the model leaves their
contents as given), marks it Validated and clears Immutable, so the page is immediately
readable by the guest (KVM ``Documentation/virt/kvm/x86/amd-memory-encryption.rst``,
SNP_LAUNCH_UPDATE).

The launch digest follows SNP firmware ABI 56860 section 8.17.2, table 67 (PAGE_INFO):
DIGEST_CUR (48 bytes) | CONTENTS (48) | LENGTH u16 = 0x70 | PAGE_TYPE u8 | IMI_PAGE u8 |
VMPL3_PERMS u8 | VMPL2_PERMS u8 | VMPL1_PERMS u8 | reserved u8 | GPA u64, and the new
digest is SHA-384 of that structure.  CONTENTS is SHA-384 of the page for NORMAL and VMSA
pages, zero for ZERO, UNMEASURED, SECRETS and CPUID pages.  VMSA pages are measured at
GPA 0xFFFFFFFFF000 (the RMP records -1, page aligned, bits above 51 clear).

Firmware status codes returned (``SEV_RET_*``, :mod:`snpsim.spec.psp_sev`): 0 SUCCESS,
0x01 INVALID_PLATFORM_STATE, 0x02 INVALID_GUEST_STATE, 0x03 INVALID_CONFIG, 0x10
INVALID_GUEST, 0x16 INVALID_PARAM, 0x1A INVALID_PAGE_STATE, 0x1C INVALID_PAGE_OWNER.

Page states (SNP firmware ABI 56860, "Page States", in RMP terms): Hypervisor (Assigned
0), Firmware (Assigned 1, ASID 0, Immutable 1: only the firmware writes it, a host write
takes a host #PF with X86_PF_RMP), Reclaim (Assigned 1, ASID 0, Immutable 0: the
hypervisor may RMPUPDATE it back to Hypervisor).  SNP_GUEST_REQUEST writes its response
into a Firmware page; SNP_PAGE_RECLAIM turns a Firmware page into a Reclaim page; KVM's
``rmp_make_shared`` then returns it to the hypervisor (kvm-qemu-host.md 7.3,
``snp_page_reclaim``).

SNP_GUEST_REQUEST is modelled simply (model choices, docs/model-choices.md): the
request and the response are host pages (KVM's), the message is not encrypted (no
VMPCK, no AEAD, the ``authtag`` is not checked), no message sequence numbers are
tracked; the firmware checks the guest context, the pages' RMP states and the message
header, and answers an SNP_MSG_REPORT_REQ with an SNP_MSG_REPORT_RSP whose report holds
the launch digest and the request's REPORT_DATA (other request types: an empty
response of the matching type).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from snpsim.spec.kvm_uapi import (
    KVM_SEV_SNP_PAGE_TYPE_CPUID,
    KVM_SEV_SNP_PAGE_TYPE_NORMAL,
    KVM_SEV_SNP_PAGE_TYPE_SECRETS,
    KVM_SEV_SNP_PAGE_TYPE_UNMEASURED,
    KVM_SEV_SNP_PAGE_TYPE_ZERO,
)
from snpsim.spec.msr_index import MSR_AMD64_SYSCFG_SNP_EN
from snpsim.spec.psp_sev import (
    SEV_RET_INVALID_CONFIG,
    SEV_RET_INVALID_GUEST,
    SEV_RET_INVALID_GUEST_STATE,
    SEV_RET_INVALID_PAGE_OWNER,
    SEV_RET_INVALID_PAGE_STATE,
    SEV_RET_INVALID_PARAM,
    SEV_RET_INVALID_PLATFORM_STATE,
    SEV_RET_SUCCESS,
)
from snpsim.spec.sev_guest import (
    MSG_HDR_VER,
    SNP_AEAD_AES_256_GCM,
    SNP_GUEST_MSG_HDR_SIZE,
    SNP_GUEST_MSG_PAYLOAD_SIZE,
    SNP_MSG_REPORT_REQ,
    SnpGuestMsgHdr,
    SnpMsgType,
)
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE

if TYPE_CHECKING:
    from .cpu import Platform

__all__ = ["SnpFirmware", "GuestContext", "SevGuestContext", "SNP_PAGE_TYPE_VMSA", "SEV_RET_SUCCESS",
           "SEV_RET_INVALID_PARAM", "SEV_RET_INVALID_GUEST", "VMSA_GPA", "page_info_digest"]

SNP_PAGE_TYPE_VMSA = 2
VMSA_GPA = 0xFFFFFFFFF000
PAGE_INFO_LEN = 0x70
LD_SIZE = 48

_MEASURED_CONTENTS = {KVM_SEV_SNP_PAGE_TYPE_NORMAL, SNP_PAGE_TYPE_VMSA}
#: Request message types (odd ``enum msg_type`` values, CPUID_REQ .. VMRK_REQ).
_REQUEST_TYPES = frozenset(int(t) for t in SnpMsgType if t % 2)
#: ``struct snp_report_resp`` (SNP ABI 56860, "MSG_REPORT_RSP"): status u32, report_size
#: u32, 24 reserved bytes, then the 0x4A0-byte ATTESTATION_REPORT, in which REPORT_DATA
#: (64 bytes) is at 0x50 and MEASUREMENT (48 bytes) at 0x90.
REPORT_RSP_REPORT_OFFSET = 0x20
ATTESTATION_REPORT_SIZE = 0x4A0
REPORT_DATA_OFFSET = 0x50
MEASUREMENT_OFFSET = 0x90
_ZERO_CONTENTS = {KVM_SEV_SNP_PAGE_TYPE_ZERO, KVM_SEV_SNP_PAGE_TYPE_UNMEASURED,
                  KVM_SEV_SNP_PAGE_TYPE_SECRETS, KVM_SEV_SNP_PAGE_TYPE_CPUID}


def page_info_digest(digest_cur: bytes, page_type: int, gpa: int, page: bytes | None,
                     imi: bool = False, vmpl_perms: tuple[int, int, int] = (0, 0, 0)) -> bytes:
    """SHA-384 of one PAGE_INFO (SNP ABI 56860 table 67): the next launch digest (48 bytes).

    ``page`` (4096 bytes) is hashed into CONTENTS for NORMAL and VMSA pages; for other
    types CONTENTS is 48 zero bytes.  Raises ValueError for an unknown ``page_type``.
    """
    if page_type in _MEASURED_CONTENTS:
        assert page is not None and len(page) == PAGE_SIZE
        contents = hashlib.sha384(page).digest()
    elif page_type in _ZERO_CONTENTS:
        contents = bytes(LD_SIZE)
    else:
        raise ValueError(f"unknown SNP page type {page_type}")
    info = (
        digest_cur
        + contents
        + PAGE_INFO_LEN.to_bytes(2, "little")
        + bytes([page_type, 1 if imi else 0, vmpl_perms[0], vmpl_perms[1], vmpl_perms[2], 0])
        + gpa.to_bytes(8, "little")
    )
    assert len(info) == PAGE_INFO_LEN
    return hashlib.sha384(info).digest()


@dataclass
class GuestContext:
    """Firmware state of one SNP guest: ``asid``, ``policy`` (u64), the running launch
    ``digest`` (48 bytes), ``state`` ("LAUNCH" or "RUNNING")."""

    asid: int
    policy: int
    digest: bytes = field(default_factory=lambda: bytes(LD_SIZE))
    state: str = "LAUNCH"
    pages: int = 0


class SnpFirmware:
    """The SNP firmware of one platform (the launch commands only)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        #: SNP_INIT(_EX) done (the platform's SNP state INIT; model-only flag).
        self.snp_initialized = False

    # -- SNP_INIT_EX (SNP firmware ABI 56860; Linux ``__sev_snp_init_locked``) -------------

    def snp_init_ex(self, init_rmp: bool = True,
                    range_list: list[tuple[int, int]] | None = None) -> int:
        """SNP_INIT_EX: initialise SNP on the platform.

        ``init_rmp``: the firmware initialises the RMP (Linux always sets INIT_RMP = 1):
        every entry cleared, then the RMP's own pages (bookkeeping, segment table,
        entries: :meth:`snpsim.hw.rmp.RmpConfig.table_extents`) put in the Firmware state
        (Assigned, ASID 0, Immutable) -- the hypervisor can neither assign nor write them
        afterwards.  ``range_list``: ``struct sev_data_range_list`` as (SPA, page count)
        pairs, pages the firmware puts in the HV-Fixed state (Immutable, not assigned;
        Linux passes the e820 reserved/ACPI/PMEM ranges and the HV-Fixed allocations).
        Nothing is stored per page: both are extents (:meth:`Rmp.set_preset_extents`).

        Ranges may overlap each other and the RMP (the BIOS reports the RMP as e820
        reserved, and Linux passes every reserved range): the RMP's pages stay Firmware.

        Returns SEV_RET_SUCCESS; SEV_RET_INVALID_PLATFORM_STATE (0x01) when already
        initialised; SEV_RET_INVALID_CONFIG (0x03) when SYSCFG.SNP_EN is clear (Linux's
        ``snp_prepare`` comment: the firmware checks SNP_EN on every CPU) or the
        platform has no RMP placement; SEV_RET_INVALID_PARAM (0x16) for a range that is
        not page aligned or empty.  The status codes for the refusals are model choices
        (docs/model-choices.md).
        """
        p = self.platform
        if self.snp_initialized:
            return SEV_RET_INVALID_PLATFORM_STATE
        cfg = p.rmp_config
        if cfg is None or not p.syscfg & MSR_AMD64_SYSCFG_SNP_EN:
            return SEV_RET_INVALID_CONFIG
        fixed = []
        for base, count in range_list or []:
            if base & (PAGE_SIZE - 1) or count <= 0:
                return SEV_RET_INVALID_PARAM
            fixed.append((base >> PAGE_SHIFT, (base >> PAGE_SHIFT) + count))
        table = _merge(cfg.table_extents())
        extents = [(a, b, "firmware") for a, b in table]
        extents += [(a, b, "hv-fixed") for a, b in _subtract(_merge(fixed), table)]
        if init_rmp:
            p.rmp.reset()
        p.rmp.set_preset_extents(extents)
        self.snp_initialized = True
        p.count("SNP_INIT_EX")
        return SEV_RET_SUCCESS

    # -- SNP_GUEST_REQUEST and SNP_PAGE_RECLAIM (SNP firmware ABI 56860; model choices in
    # docs/model-choices.md) ------------------------------------------------------------

    def _is_firmware_page(self, pfn: int) -> bool:
        e = self.platform.rmp.lookup(pfn)
        return e.assigned and e.asid == 0 and e.immutable

    def snp_guest_request(self, gctx: GuestContext | None, req_spa: int, resp_spa: int) -> int:
        """SNP_GUEST_REQUEST (SNP firmware ABI 56860; KVM ``sev_issue_cmd(kvm,
        SEV_CMD_SNP_GUEST_REQUEST, &data, &fw_err)`` with ``data.req_paddr``/``res_paddr``).

        ``req_spa``/``resp_spa``: SPAs of the request and response pages (4 KiB aligned).
        Checks, in this order (model; the ABI's order is unconfirmed):

        * the guest context is RUNNING (after SNP_LAUNCH_FINISH), else
          SEV_RET_INVALID_GUEST_STATE (0x02); no context at all: SEV_RET_INVALID_GUEST
          (0x10);
        * the response page is in the Firmware state (Assigned, ASID 0, Immutable) and
          the request page is not (a host page), else SEV_RET_INVALID_PAGE_STATE (0x1A);
        * the request's message header (``struct snp_guest_msg_hdr``): ``hdr_version`` 1,
          ``hdr_sz`` 0x60, ``algo`` AES-256-GCM, ``msg_type`` a request type (odd, 1..13),
          ``msg_vmpck`` 0..3, ``msg_sz`` fits the page, else SEV_RET_INVALID_PARAM (0x16).

        On success (0) the firmware writes the response message into the response page
        (header: ``msg_seqno`` + 1, ``msg_type`` + 1; payload: see the module doc).  On an
        error nothing is written.  Returns the SEV_RET_* status (u32).
        """
        if gctx is None:
            return SEV_RET_INVALID_GUEST
        if gctx.state != "RUNNING":
            return SEV_RET_INVALID_GUEST_STATE
        if (req_spa | resp_spa) & (PAGE_SIZE - 1) or req_spa == resp_spa:
            return SEV_RET_INVALID_PARAM
        if not self._is_firmware_page(resp_spa >> PAGE_SHIFT) or self._is_firmware_page(req_spa >> PAGE_SHIFT):
            return SEV_RET_INVALID_PAGE_STATE
        mem = self.platform.mem
        raw = mem.read_raw(req_spa, PAGE_SIZE)
        hdr = SnpGuestMsgHdr.decode(raw)
        if (hdr.hdr_version != MSG_HDR_VER or hdr.hdr_sz != SNP_GUEST_MSG_HDR_SIZE
                or hdr.algo != SNP_AEAD_AES_256_GCM or hdr.msg_vmpck > 3
                or hdr.msg_type not in _REQUEST_TYPES or hdr.msg_sz > SNP_GUEST_MSG_PAYLOAD_SIZE):
            return SEV_RET_INVALID_PARAM
        payload = b""
        if hdr.msg_type == SNP_MSG_REPORT_REQ:
            payload = _report_response(gctx, raw[SNP_GUEST_MSG_HDR_SIZE:SNP_GUEST_MSG_HDR_SIZE + hdr.msg_sz])
        resp = SnpGuestMsgHdr(msg_seqno=hdr.msg_seqno + 1, algo=hdr.algo, msg_type=hdr.msg_type + 1,
                              msg_version=hdr.msg_version, msg_sz=len(payload),
                              msg_vmpck=hdr.msg_vmpck)
        page = resp.encode() + payload
        mem.write_raw(resp_spa, page + bytes(PAGE_SIZE - len(page)))
        self.platform.count("SNP_GUEST_REQUEST")
        return SEV_RET_SUCCESS

    def snp_page_reclaim(self, spa: int) -> int:
        """SNP_PAGE_RECLAIM of the 4 KiB page at ``spa`` (SNP firmware ABI 56860; Linux
        ``snp_page_reclaim`` issues SEV_CMD_SNP_PAGE_RECLAIM with ``data.paddr``).

        The page must be in the Firmware state (Assigned, ASID 0, Immutable; the ABI's
        other firmware-owned states -- Metadata, Pre-Guest, Pre-Swap -- are not modelled),
        else SEV_RET_INVALID_PAGE_STATE (0x1A) and nothing changes.  On success (0) it is
        in the Reclaim state (Assigned, ASID 0, Immutable clear, GPA 0), from which the
        hypervisor's RMPUPDATE (``rmp_make_shared``) returns it to the Hypervisor state.
        """
        if spa & (PAGE_SIZE - 1):
            return SEV_RET_INVALID_PARAM
        pfn = spa >> PAGE_SHIFT
        if not self._is_firmware_page(pfn):
            return SEV_RET_INVALID_PAGE_STATE
        from .rmp import RmpEntry

        e = self.platform.rmp.lookup(pfn)
        self.platform.rmp._write(pfn, RmpEntry(True, e.pagesize, False, 0, 0, False, False, e.perms))
        self.platform.count("SNP_PAGE_RECLAIM")
        return SEV_RET_SUCCESS

    def snp_decommission(self, gctx: GuestContext | None) -> int:
        """SNP_DECOMMISSION (SNP firmware ABI 56860; Linux ``sev_do_cmd(SEV_CMD_SNP_
        DECOMMISSION)`` from KVM ``snp_decommission_context``): unbind the guest's ASID
        and destroy its context.  Returns SEV_RET_SUCCESS, or SEV_RET_INVALID_GUEST
        (0x10) for no context or one already decommissioned (model choice: the ABI's
        answer for a stale handle is unconfirmed).  The guest's pages keep their RMP
        entries: reclaiming them is the hypervisor's RMPUPDATE."""
        if gctx is None or gctx.state == "DECOMMISSIONED":
            return SEV_RET_INVALID_GUEST
        gctx.state = "DECOMMISSIONED"
        self.platform.count("SNP_DECOMMISSION")
        return SEV_RET_SUCCESS

    def snp_launch_start(self, asid: int, policy: int = 0x30000) -> GuestContext:
        """SNP_LAUNCH_START: a new guest context for ``asid`` with ``policy``."""
        return GuestContext(asid, policy)

    def snp_launch_update(self, gctx: GuestContext, spa: int, gpa: int, page_type: int) -> int:
        """SNP_LAUNCH_UPDATE of one 4 KiB page at ``spa`` mapped at ``gpa`` (bytes).

        The RMP entry must be assigned to ``gctx.asid`` at ``gpa`` and Immutable (what
        KVM's ``rmp_make_private(..., immutable=true)`` made), else nothing changes and
        the answer is SEV_RET_INVALID_PAGE_OWNER (0x1C) for a page assigned to another
        guest, SEV_RET_INVALID_PAGE_STATE (0x1A) for a page in the Firmware or
        HV-Fixed state, SEV_RET_INVALID_PARAM (0x16) otherwise (model choices for the
        first two, docs/model-choices.md).  On success (0) the page is measured,
        encrypted in place, Validated, and no longer Immutable.
        """
        if gctx.state != "LAUNCH":
            return SEV_RET_INVALID_GUEST
        rmp = self.platform.rmp
        pfn = spa >> PAGE_SHIFT
        e = rmp.lookup(pfn)
        if e.assigned and e.asid not in (0, gctx.asid):
            return SEV_RET_INVALID_PAGE_OWNER
        if e.owner in ("firmware", "hv-fixed"):
            return SEV_RET_INVALID_PAGE_STATE
        e = rmp.entry(pfn)
        want_gpa = VMSA_GPA if page_type == SNP_PAGE_TYPE_VMSA else gpa
        if not (e.assigned and e.immutable and e.asid == gctx.asid and e.gpa == want_gpa & ~0xFFF):
            return SEV_RET_INVALID_PARAM
        if page_type not in _MEASURED_CONTENTS | _ZERO_CONTENTS:
            return SEV_RET_INVALID_PARAM
        mem = self.platform.mem
        if page_type == KVM_SEV_SNP_PAGE_TYPE_ZERO:
            mem.write_raw(spa, bytes(PAGE_SIZE))
        plain = mem.read_raw(spa, PAGE_SIZE)
        gctx.digest = page_info_digest(gctx.digest, page_type, want_gpa, plain)
        mem.write_enc(spa, plain, gctx.asid)
        from .rmp import RmpEntry

        rmp._write(pfn, RmpEntry(True, 0, False, e.gpa, e.asid, page_type == SNP_PAGE_TYPE_VMSA,
                                 True, e.perms))
        gctx.pages += 1
        self.platform.count("LAUNCH_UPDATE")
        return SEV_RET_SUCCESS

    def snp_launch_finish(self, gctx: GuestContext) -> bytes:
        """SNP_LAUNCH_FINISH: the guest starts running; returns the 48-byte launch digest."""
        gctx.state = "RUNNING"
        return gctx.digest

    # -- SEV / SEV-ES launch (SEV API 55766: LAUNCH_START, LAUNCH_UPDATE_DATA,
    # LAUNCH_UPDATE_VMSA, LAUNCH_MEASURE, LAUNCH_FINISH), reduced to what a launch needs.

    def sev_launch_start(self, asid: int, policy: int = 0) -> SevGuestContext:
        """LAUNCH_START (+ ACTIVATE of ``asid``): a new SEV guest context; the guest's
        memory key is the ASID's key of the encryption engine."""
        return SevGuestContext(asid, policy)

    def sev_launch_update_data(self, ctx: SevGuestContext, spa: int, length: int) -> int:
        """LAUNCH_UPDATE_DATA of ``length`` bytes at ``spa`` (whole 4 KiB pages): measure
        the plaintext into the launch digest (SHA-256, model) and encrypt it in place with
        the guest's key.  SEV_RET_INVALID_GUEST after LAUNCH_FINISH; INVALID_PARAM for an
        unaligned range.  No RMP involvement (SEV / SEV-ES)."""
        if ctx.state != "LAUNCH":
            return SEV_RET_INVALID_GUEST
        if spa & (PAGE_SIZE - 1) or length <= 0 or length & (PAGE_SIZE - 1):
            return SEV_RET_INVALID_PARAM
        mem = self.platform.mem
        for off in range(0, length, PAGE_SIZE):
            plain = mem.read_raw(spa + off, PAGE_SIZE)
            ctx.ld.update(plain)
            mem.write_enc(spa + off, plain, ctx.asid)
            ctx.pages += 1
        self.platform.count("LAUNCH_UPDATE_DATA")
        return SEV_RET_SUCCESS

    def sev_launch_update_vmsa(self, ctx: SevGuestContext, spa: int) -> int:
        """LAUNCH_UPDATE_VMSA (SEV-ES): measure and encrypt one vCPU's VMSA page."""
        return self.sev_launch_update_data(ctx, spa, PAGE_SIZE)

    def sev_launch_measure(self, ctx: SevGuestContext) -> bytes:
        """LAUNCH_MEASURE: the launch digest so far (model: SHA-256 of the measured
        plaintext; the real MEASURE is an HMAC over it keyed with the TIK)."""
        return ctx.ld.digest()

    def sev_launch_finish(self, ctx: SevGuestContext) -> int:
        """LAUNCH_FINISH: the guest may run; no more LAUNCH_UPDATE_*."""
        if ctx.state != "LAUNCH":
            return SEV_RET_INVALID_GUEST
        ctx.state = "RUNNING"
        return SEV_RET_SUCCESS


@dataclass
class SevGuestContext:
    """Firmware state of one SEV / SEV-ES guest: ``asid``, ``policy`` (u32), ``ld`` the
    running launch digest (model: SHA-256), ``state`` ("LAUNCH" or "RUNNING"),
    ``pages`` measured."""

    asid: int
    policy: int
    ld: hashlib._Hash = field(default_factory=hashlib.sha256)
    state: str = "LAUNCH"
    pages: int = 0


def _report_response(gctx: GuestContext, req: bytes) -> bytes:
    """Model-only: the MSG_REPORT_RSP payload for an MSG_REPORT_REQ payload ``req``
    (``struct snp_report_req``: REPORT_DATA 64 bytes, VMPL u32): status 0, the report
    size, and a report with only REPORT_DATA, VMPL and MEASUREMENT (the launch digest)
    filled; no signature."""
    report = bytearray(ATTESTATION_REPORT_SIZE)
    report_data = req[:64].ljust(64, b"\0")
    vmpl = int.from_bytes(req[64:68].ljust(4, b"\0"), "little")
    report[0x30:0x34] = vmpl.to_bytes(4, "little")
    report[REPORT_DATA_OFFSET:REPORT_DATA_OFFSET + 64] = report_data
    report[MEASUREMENT_OFFSET:MEASUREMENT_OFFSET + LD_SIZE] = gctx.digest
    head = (0).to_bytes(4, "little") + ATTESTATION_REPORT_SIZE.to_bytes(4, "little") + bytes(24)
    assert len(head) == REPORT_RSP_REPORT_OFFSET
    return head + bytes(report)


def _merge(extents: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Model-only: the union of PFN ranges ``[start, end)``, sorted and disjoint."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(extents):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _subtract(extents: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Model-only: the parts of sorted disjoint ``extents`` outside sorted disjoint ``holes``."""
    out = []
    for a, b in extents:
        for h0, h1 in holes:
            if h1 <= a or h0 >= b:
                continue
            if h0 > a:
                out.append((a, h0))
            a = max(a, h1)
            if a >= b:
                break
        if a < b:
            out.append((a, b))
    return out
