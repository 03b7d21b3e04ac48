"""LeMa (Learning from Mistakes) data pipeline for axolotl and lm-eval."""
__version__ = "0.1.0"
