"""snpsim.hw.world (being written)."""
