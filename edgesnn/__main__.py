import sys

from edgesnn.cli import main

sys.exit(main())
