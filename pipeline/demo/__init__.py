"""A simulated OnApp cloud served over real HTTP on loopback, for `make run`, the tests and the benchmarks. No Dagster."""
