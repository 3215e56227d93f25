# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""snpsim: an executable, spec-faithful model of AMD SEV-SNP guest memory.

Layers (see ARCHITECTURE.md): ``spec`` (formats and constants) <- ``hw`` (the
platform: memory, RMP, SNP instructions, world switch) <- ``guest`` (the Linux guest
kernel) and ``kvm`` (the host kernel) <- ``vmm`` (the userspace VMM).  ``system``
assembles one SNP VM; ``cli`` is the ``snpsim`` command.
"""

__version__ = "0.1.0"
