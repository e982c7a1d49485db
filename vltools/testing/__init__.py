"""Test doubles for code built on vltools; nothing in the library imports this package.

- `vltools.testing.openai_server`: a small OpenAI-compatible HTTP server in front of a local LLM
  backend (``python -m vltools.testing.openai_server``), to test the ``openai:`` spec, or any
  OpenAI client, offline on loopback.
"""
