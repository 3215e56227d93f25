"""Constants the guest needs that ``snpsim.spec`` does not define yet (second shim).

Model-only, temporary: ``guest/spec_pending.py`` is being moved into ``spec/`` by another
engineer, so these new names live here until ``spec/`` defines them; each is taken from
``snpsim.spec`` when it appears there (same pattern as ``spec_pending``).

- ``SIGBUS`` 7 and ``BUS_OBJERR`` 3 -- ``include/uapi/asm-generic/signal.h`` (x86 uses
  the generic numbers) and ``include/uapi/asm-generic/siginfo.h`` [from memory].
- ``VMALLOC_START`` 0xffffc90000000000 and ``VMALLOC_SIZE_TB`` 32 (4-level paging, no
  KASLR) -- ``arch/x86/include/asm/pgtable_64_types.h``,
  Documentation/arch/x86/x86_64/mm.rst [from memory].
"""

from __future__ import annotations

from snpsim.spec import page_64_types as _p64

__all__ = ["SIGBUS", "BUS_OBJERR", "VMALLOC_START", "VMALLOC_END"]


def _pick(module: object, name: str, fallback: int) -> int:
    value = getattr(module, name, None)
    return fallback if value is None else int(value)


SIGBUS = 7
BUS_OBJERR = 3
VMALLOC_START = _pick(_p64, "VMALLOC_START", 0xFFFFC90000000000)
VMALLOC_END = VMALLOC_START + (32 << 40) - 1
