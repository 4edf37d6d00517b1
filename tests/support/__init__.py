"""Shared test helpers: ``from tests.support.<module> import ...``."""
