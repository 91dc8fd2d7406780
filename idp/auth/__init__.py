"""Citizen sign-in: passwords, one-time codes, sessions, interactions."""
