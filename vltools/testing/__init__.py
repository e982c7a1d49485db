"""Test doubles for code built on vltools; nothing in the library imports this package.

- `vltools.testing.openai_server`: a small OpenAI-compatible HTTP server in front of a local LLM
  backend (``python -m vltools.testing.openai_server``), to test the ``openai:`` spec, or any
  OpenAI client, offline on loopback.
- `vltools.testing.scripted_llm`: a deterministic LLM backend that knows which passages are
  relevant and answers every reranker's prompt as a perfect judge would (``installed(llm)``
  makes tools resolve its spec to it).
"""
