"""`python -m pipeline.demo`: serve the simulated cloud in the foreground."""

import sys

from pipeline.demo.cli import main

sys.exit(main())
