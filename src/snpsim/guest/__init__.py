"""snpsim.guest."""
