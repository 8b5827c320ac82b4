"""`python -m app.cli ...` is the `grader` console script."""

import sys

from app.cli.main import main

sys.exit(main())
