# SPDX-FileCopyrightText: Copyright © 2026 The snpsim developers
#
# SPDX-License-Identifier: GPL-2.0-only

"""snpsim.spec: constants and binary formats of SEV-SNP, pure and stateless.

Everything here is standard library only and holds no state: GHCB page layout, PSC
descriptor, GHCB MSR protocol, NAE exit codes, error codes, RMP codes, fault bits,
termination reasons and KVM uAPI numbers.  Each value cites its source.
"""
