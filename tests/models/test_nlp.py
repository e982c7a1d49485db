"""One spaCy pipeline per process, shared by the language layer, the agent parser and fact checking."""

from __future__ import annotations


def test_one_cached_pipeline_for_every_user():
    from vltools.agents.parse import nlp as agent_nlp
    from vltools.models import nlp
    from vltools.tools.factcheck import _parse

    pipe = nlp.get_nlp()
    assert agent_nlp() is pipe and _parse.get_nlp() is pipe
    assert "parser" in pipe.pipe_names
    doc = nlp.parse("A brown dog runs across the beach.")
    assert nlp.parse("A brown dog runs across the beach.") is doc  # cached
    assert [t.dep_ for t in doc if t.text == "dog"] == ["nsubj"]
