"""Reference solution of the HW1P1 Bonus (Adam, AdamW, Dropout), in the bonus handout's layout:
one `mytorch/` folder. Only the bonus's own files are here; a handin also carries the student's
HW1P1 files (mytorch/nn/linear.py, ..., mytorch/models/mlp.py), which the bonus does not grade."""
