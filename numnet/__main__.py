"""``python -m numnet``: the numnet command line (see :mod:`numnet.cli`)."""

from numnet.cli import main

raise SystemExit(main())
