"""Layers: single-device maths. Each file is one concept with its config schema beside it.

Layers know nothing of Hydra, meshes or devices: they name their parameters' logical axes,
tag remat-able activations with checkpoint names, and call attention through the function
they are handed at build time.
"""
