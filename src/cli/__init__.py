"""Command-line entry points."""

from hydralearn.compose.xla import cpu_only_without_accelerators

# Before any command starts JAX (the entry points import this package first).
cpu_only_without_accelerators()
