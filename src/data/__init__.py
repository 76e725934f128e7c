"""Corpora, tokenizers and input pipelines."""
