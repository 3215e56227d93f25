"""snpsim.scenarios."""
