from mytorch.nn import *  # noqa: F401,F403
from mytorch.optim import *  # noqa: F401,F403
