"""The Kubernetes API as a source of models: list+watch per collection, see `source.py`."""
