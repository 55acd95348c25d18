"""Factories and helpers for the tests: each test builds what it needs through the real services."""
