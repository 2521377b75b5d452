"""Accounts: register, log in, refresh, log out, me, delete account."""
