"""PostgreSQL access: connections from the settings DSN and the migration runner."""
