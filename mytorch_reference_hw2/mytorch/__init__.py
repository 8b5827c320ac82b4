"""HW2P1 reference: the layers (nn/) and flatten.py."""
