"""Declared clients: in process, their checks, under real servers, and in tests."""
