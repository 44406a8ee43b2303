import sys

from batchaction.cli import main

sys.exit(main())
