"""V-NAS (Zhu et al. 2019, arXiv:1906.02817): the candidate ops and the pure mixed op (:mod:`.ops`), the search
spaces, supernet and searched network (:mod:`.search_space`), and genotype files (:mod:`.genotype`)."""
