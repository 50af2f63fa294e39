"""``python -m motiontransfer`` runs the command line."""

import sys

from motiontransfer.cli import main

sys.exit(main())
