"""Allo: a self-hostable AI customer-relations platform for telecom operators, French first."""

__version__ = "0.1.0"
__all__ = ["__version__"]
