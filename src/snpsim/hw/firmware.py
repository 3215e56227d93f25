"""snpsim.hw.firmware (being written)."""
