"""The store: the persisted index (FAISS + BM25 + chunks + manifest) and the indexers that write it."""
