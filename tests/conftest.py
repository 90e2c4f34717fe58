"""Fixtures shared by every room's tests. Add to this file; don't rewrite what others put here."""
