"""riskwatch.config."""
