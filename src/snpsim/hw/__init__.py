"""snpsim.hw."""
