"""`python -m pipeline.demo`: serve the simulated cloud in the foreground."""

import sys

from pipeline.demo.cloud import main

sys.exit(main())
