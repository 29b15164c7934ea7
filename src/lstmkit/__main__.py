"""``python -m lstmkit`` (and ``torchrun -m lstmkit``) runs the command line."""

import sys

from lstmkit.cli import main

sys.exit(main())
