"""Shipped DCDM weights (data only; see README.md)."""
