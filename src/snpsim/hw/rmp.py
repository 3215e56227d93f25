"""snpsim.hw.rmp (being written)."""
