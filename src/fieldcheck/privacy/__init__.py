"""A worker's own data: closing the account (pseudonymised, money owed still paid)."""
