"""The config room, jax-free: schemas, Hydra composition, validation, override diagnosis, the
instantiation allowlist, the ConfigStore, the resume rule. Composing, printing and checking a
config never imports jax (a contract in pyproject.toml holds this); compose/ turns the result
into a program."""
