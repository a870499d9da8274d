"""Knowledge base: articles, the offline embedding model, chunking, the FAISS + BM25 index and retrieval."""
