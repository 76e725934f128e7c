"""A squared-ReLU feed-forward for hydralearn, as a separate package (docs/plugins.md)."""
