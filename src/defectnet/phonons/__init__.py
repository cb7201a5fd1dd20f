"""Phonon engine: potentials, force constants for pristine and doped cells, PDoS."""
