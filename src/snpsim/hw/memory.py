"""snpsim.hw.memory (being written)."""
