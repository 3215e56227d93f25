"""snpsim.vmm."""
