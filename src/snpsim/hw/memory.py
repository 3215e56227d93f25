# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""System physical memory and the memory-encryption engine.

Physical memory is sparse: a page costs memory only once something is written to it;
an untouched page reads as zeros raw, and a private read of it is computed (the zero
page decrypted with the reader's key and the page's SPA) without storing anything.  Each page is held in one of two forms:

* raw bytes, what is in DRAM, for pages last written without encryption (C=0 guest
  writes and host writes), and
* (ASID, plaintext), for pages last written by a guest with C=1.  The DRAM contents of
  such a page are its ciphertext, computed on demand when anyone reads it with another
  key or without a key.  This is observably the same as encrypting on every write, and
  it keeps private accesses cheap.

The encryption engine has one key per ASID and uses the SPA as the tweak, so the same
plaintext at two SPAs, or under two ASIDs, gives different ciphertext, and a page read
with the wrong C-bit or key gives bytes unrelated to what was written.

Model choice (documented in docs/model-choices.md): the cipher is AES-256-XTS from the
``cryptography`` package with one 4 KiB data unit per page and the page's SPA as the
tweak.  Hardware uses AES-128 with its own address tweak per 16-byte block, so the
ciphertext bytes are a model, not what hardware would produce.  Keys are derived
deterministically from a platform seed and the ASID (SHA-512), so runs are reproducible.

Source: AMD APM vol 2 section 15.34 (SME/SEV memory encryption, per-ASID keys, physical
address tweak).
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from snpsim.spec.units import PAGE_SHIFT, PAGE_SIZE

__all__ = ["EncryptionEngine", "PhysicalMemory", "ZERO_VIEW_CACHE_PAGES"]

_ZERO_PAGE = bytes(PAGE_SIZE)


class EncryptionEngine:
    """Per-ASID AES-256-XTS keys with the 4 KiB-aligned SPA as tweak.

    ``seed``: bytes mixed into every key (model-only), so two platforms differ.
    ASID 0 is the host's: SME is off in the model, so ASID 0 is never used to encrypt.
    """

    def __init__(self, seed: bytes = b"snpsim") -> None:
        self._seed = seed
        self._keys: dict[int, bytes] = {}

    def _key(self, asid: int) -> bytes:
        key = self._keys.get(asid)
        if key is None:
            key = hashlib.sha512(self._seed + b"/asid/" + asid.to_bytes(4, "little")).digest()
            self._keys[asid] = key
        return key

    def _cipher(self, asid: int, spa: int) -> Cipher:
        tweak = (spa & ~(PAGE_SIZE - 1)).to_bytes(16, "little")
        return Cipher(algorithms.AES(self._key(asid)), modes.XTS(tweak))

    def encrypt_page(self, asid: int, spa: int, plaintext: bytes) -> bytes:
        """Ciphertext (4096 bytes) of a 4096-byte page at ``spa`` under ``asid``'s key."""
        enc = self._cipher(asid, spa).encryptor()
        return enc.update(plaintext) + enc.finalize()

    def decrypt_page(self, asid: int, spa: int, ciphertext: bytes) -> bytes:
        """Plaintext (4096 bytes) of a 4096-byte ciphertext page at ``spa`` under ``asid``."""
        dec = self._cipher(asid, spa).decryptor()
        return dec.update(ciphertext) + dec.finalize()


#: Model-only bound on the cache of computed private views of never-written pages
#: (pages of 4 KiB; see :class:`PhysicalMemory`).
ZERO_VIEW_CACHE_PAGES = 64


class PhysicalMemory:
    """Sparse system physical memory, addressed by SPA in bytes.

    ``size``: bytes of SPA space that exist (accesses beyond it are a model bug and
    raise ``AssertionError``).  Accesses may cross page boundaries.

    ``read_raw``/``write_raw`` are DRAM as the host sees it (no key).  ``read_enc``/
    ``write_enc`` go through the encryption engine with an ASID's key, as a C=1 guest
    access does.  This class does no RMP checks: those are in :mod:`snpsim.hw.npt` and
    :mod:`snpsim.hw.cpu`.

    Cost: a page stores something only once it is written (4 KiB of contents plus one
    dict slot keyed by PFN).  Reading never-written memory stores nothing: a raw read
    gives zeros, a private read decrypts the zero page with the reader's key and the
    page's SPA.  The last ``ZERO_VIEW_CACHE_PAGES`` such decrypted views are kept
    (oldest dropped first) so that a run of small reads of one page costs one AES
    operation; a cached view is a pure function of (ASID, PFN) and is never stale.
    Reading a written page with another key than the one that wrote it converts its
    stored form (the bytes in DRAM do not change: AES-XTS over a whole 4 KiB unit is a
    permutation, so ``encrypt(decrypt(x)) == x``).
    """

    def __init__(self, size: int, engine: EncryptionEngine | None = None) -> None:
        self.size = size
        self.engine = engine or EncryptionEngine()
        # A page is in at most one of the two dicts.  Raw pages are bytearrays so that a
        # small write (an 8-byte GHCB field) updates them in place; they are never handed
        # out, only copies of their bytes.
        self._raw: dict[int, bytearray] = {}
        self._plain: dict[int, tuple[int, bytearray]] = {}
        # (asid, pfn) -> plaintext a never-written page shows to that key; bounded.
        self._zero_views: dict[tuple[int, int], bytes] = {}

    # -- one page -------------------------------------------------------------------
    def _page_raw(self, pfn: int) -> bytes | bytearray:
        p = self._plain.get(pfn)
        if p is not None:
            asid, pt = p
            return self.engine.encrypt_page(asid, pfn << PAGE_SHIFT, bytes(pt))
        return self._raw.get(pfn, _ZERO_PAGE)

    def _zero_view(self, pfn: int, asid: int) -> bytes:
        """What a never-written page shows to a C=1 read with ``asid``'s key (not stored
        with the page; kept in the bounded view cache)."""
        key = (asid, pfn)
        v = self._zero_views.get(key)
        if v is None:
            v = self.engine.decrypt_page(asid, pfn << PAGE_SHIFT, _ZERO_PAGE)
            views = self._zero_views
            if len(views) >= ZERO_VIEW_CACHE_PAGES:
                del views[next(iter(views))]
            views[key] = v
        return v

    def _page_view(self, pfn: int, asid: int) -> bytes | bytearray:
        """The plaintext ``asid``'s key gives for page ``pfn``, for reading only: the
        stored page when that key wrote it, else computed without storing anything for
        a never-written page."""
        p = self._plain.get(pfn)
        if p is not None and p[0] == asid:
            return p[1]
        if p is None and pfn not in self._raw:
            return self._zero_view(pfn, asid)
        return self._page_plain(pfn, asid)

    def _page_plain(self, pfn: int, asid: int) -> bytearray:
        """The stored plaintext of page ``pfn`` under ``asid``, materialised (for a write
        through ``asid``'s key, or a read of a page another key or C=0 wrote)."""
        p = self._plain.get(pfn)
        if p is not None and p[0] == asid:
            return p[1]
        raw = self._raw.pop(pfn, None)
        if p is None and raw is None:
            pt = bytearray(self._zero_views.pop((asid, pfn), None)
                           or self.engine.decrypt_page(asid, pfn << PAGE_SHIFT, _ZERO_PAGE))
        else:
            ct = bytes(raw) if raw is not None else bytes(self._page_raw(pfn))
            pt = bytearray(self.engine.decrypt_page(asid, pfn << PAGE_SHIFT, ct))
        self._plain[pfn] = (asid, pt)
        return pt

    def _check(self, spa: int, n: int) -> None:
        assert 0 <= spa and spa + n <= self.size, f"SPA {spa:#x}+{n} outside physical memory"

    def _chunks(self, spa: int, n: int):
        while n > 0:
            pfn, off = spa >> PAGE_SHIFT, spa & (PAGE_SIZE - 1)
            take = min(n, PAGE_SIZE - off)
            yield pfn, off, take
            spa += take
            n -= take

    # -- public ----------------------------------------------------------------------
    def read_raw(self, spa: int, n: int) -> bytes:
        """``n`` bytes of DRAM at ``spa``: ciphertext for pages written encrypted."""
        self._check(spa, n)
        off = spa & (PAGE_SIZE - 1)
        if 0 < n <= PAGE_SIZE - off:  # within one page: the common case
            return bytes(self._page_raw(spa >> PAGE_SHIFT)[off : off + n])
        return b"".join(self._page_raw(pfn)[off : off + k] for pfn, off, k in self._chunks(spa, n))

    def write_raw(self, spa: int, data: bytes) -> None:
        """Write ``data`` to DRAM at ``spa`` without encryption."""
        n = len(data)
        self._check(spa, n)
        off = spa & (PAGE_SIZE - 1)
        if 0 < n <= PAGE_SIZE - off:  # within one page, already stored raw: the common case
            page = self._raw.get(spa >> PAGE_SHIFT)
            if page is not None:
                page[off : off + n] = data
                return
        pos = 0
        for pfn, off, k in self._chunks(spa, n):
            page = self._raw.get(pfn)
            if page is None:
                if off == 0 and k == PAGE_SIZE:
                    self._plain.pop(pfn, None)
                    self._raw[pfn] = bytearray(data[pos : pos + k])
                    pos += k
                    continue
                # untouched (zeros) or last written encrypted (ciphertext)
                page = bytearray(self._page_raw(pfn))
                self._plain.pop(pfn, None)
                self._raw[pfn] = page
            page[off : off + k] = data[pos : pos + k]
            pos += k

    def read_enc(self, spa: int, n: int, asid: int) -> bytes:
        """``n`` bytes at ``spa`` decrypted with ``asid``'s key (a C=1 read).  Stores
        nothing for a never-written page (see the class docstring)."""
        self._check(spa, n)
        off = spa & (PAGE_SIZE - 1)
        if 0 < n <= PAGE_SIZE - off:  # within one page: the common case
            return bytes(self._page_view(spa >> PAGE_SHIFT, asid)[off : off + n])
        return b"".join(
            bytes(self._page_view(pfn, asid)[off : off + k]) for pfn, off, k in self._chunks(spa, n)
        )

    def write_enc(self, spa: int, data: bytes, asid: int) -> None:
        """Write ``data`` at ``spa`` encrypted with ``asid``'s key (a C=1 write)."""
        n = len(data)
        self._check(spa, n)
        off = spa & (PAGE_SIZE - 1)
        if 0 < n < PAGE_SIZE and n <= PAGE_SIZE - off:  # part of one page: the common case
            self._page_plain(spa >> PAGE_SHIFT, asid)[off : off + n] = data
            return
        pos = 0
        for pfn, off, k in self._chunks(spa, len(data)):
            if off == 0 and k == PAGE_SIZE:
                self._raw.pop(pfn, None)
                self._plain[pfn] = (asid, bytearray(data[pos : pos + k]))
            else:
                self._page_plain(pfn, asid)[off : off + k] = data[pos : pos + k]
            pos += k

    def discard(self, spa: int, n: int) -> None:
        """Forget the contents of whole pages in ``[spa, spa+n)`` (they read as zeros).

        Model-only: used when the host allocator hands out a fresh page.  Costs
        O(min(pages in the range, pages stored)).
        """
        if n <= 0:
            return
        first, end = spa >> PAGE_SHIFT, ((spa + n - 1) >> PAGE_SHIFT) + 1
        for store in (self._raw, self._plain):
            if not store:
                continue
            if end - first <= len(store):
                for pfn in range(first, end):
                    store.pop(pfn, None)  # type: ignore[call-overload]
            else:
                for pfn in [p for p in store if first <= p < end]:
                    del store[pfn]

    def written(self, pfn: int) -> bool:
        """Whether page ``pfn`` holds written contents (else it reads as zeros raw)."""
        return pfn in self._raw or pfn in self._plain

    def pages_stored(self) -> int:
        """Number of 4 KiB pages that hold contents (memory cost of the model)."""
        return len(self._raw) + len(self._plain)

    def bytes_cached(self) -> int:
        """Bytes held by the bounded cache of computed zero-page views (model-only)."""
        return PAGE_SIZE * len(self._zero_views)
