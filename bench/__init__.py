"""Fleet-scale benchmarks: fetch, normalize and load, reports, and the whole job, each beside its limit."""
