"""V-NAS search space (Zhu et al. 2019, arXiv:1906.02817) and its genotype files."""
