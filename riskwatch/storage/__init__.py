"""riskwatch.storage."""
