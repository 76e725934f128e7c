"""Config files shipped with the package (found by hydra_plugins/relu2_layers)."""
