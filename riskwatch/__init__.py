"""riskwatch: streaming risk monitoring and early warning for work-safety supervision."""

__version__ = "0.1.0"
__all__ = ["__version__"]
