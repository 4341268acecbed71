"""The PostgreSQL backend (``MCHAT_DATABASE_URL=postgresql://...``): schema, pool, search,
leases. See docs/postgresql.md for what is wired and what is not yet."""
