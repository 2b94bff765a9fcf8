"""riskwatch.sensors_sim."""
