"""Test helpers shipped with the package: deterministic backends for testing tools and pipelines."""
