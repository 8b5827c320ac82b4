from mytorch.nn import *
from mytorch.optim import *
