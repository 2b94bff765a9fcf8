"""riskwatch.detectors."""
