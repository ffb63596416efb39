"""Cluster clients: YARN (pure report/output parsing, ResourceManager REST and CLI clients) and Hadoop configuration."""
