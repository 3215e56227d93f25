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

Firmware status codes returned: 0 SUCCESS, 0x16 INVALID_PARAM (sev-dev ``SEV_RET_*``).
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
from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE

if TYPE_CHECKING:
    from .cpu import Platform

__all__ = ["SnpFirmware", "GuestContext", "SevGuestContext", "SNP_PAGE_TYPE_VMSA", "SEV_RET_SUCCESS",
           "SEV_RET_INVALID_PARAM", "SEV_RET_INVALID_GUEST", "VMSA_GPA", "page_info_digest"]

SNP_PAGE_TYPE_VMSA = 2
SEV_RET_SUCCESS = 0x00
SEV_RET_INVALID_GUEST = 0x04
SEV_RET_INVALID_PARAM = 0x16
VMSA_GPA = 0xFFFFFFFFF000
PAGE_INFO_LEN = 0x70
LD_SIZE = 48

_MEASURED_CONTENTS = {KVM_SEV_SNP_PAGE_TYPE_NORMAL, SNP_PAGE_TYPE_VMSA}
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

    def snp_launch_start(self, asid: int, policy: int = 0x30000) -> GuestContext:
        """SNP_LAUNCH_START: a new guest context for ``asid`` with ``policy``."""
        return GuestContext(asid, policy)

    def snp_launch_update(self, gctx: GuestContext, spa: int, gpa: int, page_type: int) -> int:
        """SNP_LAUNCH_UPDATE of one 4 KiB page at ``spa`` mapped at ``gpa`` (bytes).

        The RMP entry must be assigned to ``gctx.asid`` at ``gpa`` and Immutable, else
        SEV_RET_INVALID_PARAM (0x16) and nothing changes.  On success (0) the page is
        measured, encrypted in place, Validated, and no longer Immutable.
        """
        if gctx.state != "LAUNCH":
            return SEV_RET_INVALID_GUEST
        rmp = self.platform.rmp
        pfn = spa >> PAGE_SHIFT
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
