from mytorch.nn.dropout import Dropout

__all__ = ["Dropout"]
