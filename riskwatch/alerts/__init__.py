"""riskwatch.alerts."""
