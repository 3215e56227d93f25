"""snpsim.kvm."""
