"""riskwatch.console."""
