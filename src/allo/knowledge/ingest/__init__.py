"""Turning files into documents and chunks: parsers, chunking, the incremental loader."""
