"""LLM rerankers: listwise (RankGPT), FIRST, in-context reranking (ICR), Rank-R1 setwise, pointwise."""
