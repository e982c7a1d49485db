"""Natural-logic fact checking (P39): WordNet lexical relations, the NatLog automaton, and the
`natlog.*` / `evidence.select` tools that `graph.fact_check` calls through the registry."""
