from mytorch.optim.adam import Adam
from mytorch.optim.adamW import AdamW

__all__ = ["Adam", "AdamW"]
