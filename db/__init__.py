"""Call records in PostgreSQL: migrations, the record writer with its crash-safe journal,
reports and the call log (see db/README.md)."""
