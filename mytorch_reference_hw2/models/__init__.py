"""HW2P1 reference models: the scanning MLPs and the CNN."""
