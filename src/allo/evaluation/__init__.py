"""Measuring Allo on public data: loaders, metrics, reports (``allo eval ...``)."""
