"""The shared machinery of nncas's own command-line applications (power, vision, benchmarks,
examples): argument parsing and exit codes, setting checks, atomic files and dask sweeps. Not
part of the modelling API."""
