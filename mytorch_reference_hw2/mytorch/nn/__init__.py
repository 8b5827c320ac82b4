"""HW2P1 reference layers."""
