"""snpsim.hw.ports (being written)."""
