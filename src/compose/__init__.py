"""The composer: a resolved config -> the sharded JAX program for the target (resolution of
autos, mesh, sharding, kernels, remat, optimizers, the step, deviceless compile targets)."""
