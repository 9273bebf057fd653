"""Search indexes over chunks: lexical (BM25), dense (embeddings) and their fusion."""
