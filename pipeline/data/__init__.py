"""Data in and out: dataset schemas, label columns and slugs, training artifacts."""
