"""riskwatch.ingest."""
