"""Exchange with other ecosystems: Hugging Face checkpoints (hf.py, hf_config.py)."""
