"""Screens: the main view, and the modals it opens (confirm, help, diff, diagnostics)."""
