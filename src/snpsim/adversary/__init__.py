"""snpsim.adversary."""
