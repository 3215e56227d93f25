"""snpsim.hw.npt (being written)."""
