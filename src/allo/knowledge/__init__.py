"""The knowledge engine: ingest documents, retrieve passages, answer with citations."""
