"""Config -> program: schemas, validation, resolution of autos, mesh, sharding, build."""
