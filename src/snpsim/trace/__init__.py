"""snpsim.trace."""
