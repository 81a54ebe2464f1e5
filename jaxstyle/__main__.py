"""``python -m jaxstyle COMMAND``: the same as the ``jaxstyle`` console script."""

import sys

from jaxstyle.cli.main import main

sys.exit(main())
