"""Reasoners: from evidence to a diagnosis, and from a diagnosis to a plan."""
