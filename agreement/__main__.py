"""python -m agreement: see agreement.command."""

import sys

from agreement.command import main

sys.exit(main())
