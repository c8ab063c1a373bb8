"""fastrec estimators. Import them from ``fastrec`` directly."""

from .base import NotFittedError, Recommender, load

__all__ = ["NotFittedError", "Recommender", "load"]
