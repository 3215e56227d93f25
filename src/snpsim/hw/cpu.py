"""snpsim.hw.cpu (being written)."""
