"""``python -m dvsstream.cli``: the ``dvsstream`` command."""

import sys

from dvsstream.cli import main

sys.exit(main())
