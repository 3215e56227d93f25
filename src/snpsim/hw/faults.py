"""snpsim.hw.faults (being written)."""
