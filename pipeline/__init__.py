"""ETL from an OnApp cloud's per-VM backup lists into a DuckDB warehouse with storage reports."""

import os

# Arrow's own pool (mimalloc or jemalloc) keeps what the fetch's converted parts freed for its own
# reuse, under the load's peak: with malloc that memory goes back to the OS (40 MiB at 100,000
# backups, `make bench`). Read once, when pyarrow first allocates: so set before anything imports it.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
