"""``python -m numnet.cli``: the same as ``python -m numnet`` and the ``numnet`` command."""

from numnet.cli import main

raise SystemExit(main())
