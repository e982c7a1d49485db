"""Text knowledge about a class name, for zero-shot classification prompts (no image is looked at).

``wordnet_descriptions`` gives a label's WordNet gloss and hypernym as class descriptions
(Menon & Vondrick 2023, "Visual classification via description from LLMs", with WordNet as the
knowledge source instead of an LLM; the glosses often name colour and shape: "lemon, yellow oval
fruit with juicy acidic flesh"). Needs WordNet 3.0 (Debian ``wordnet-base``, laid out by
``scripts/setup_data.py``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any


def clean_text(text: str) -> str:
    """WordNet lemma or label text with underscores as spaces and whitespace collapsed."""
    return re.sub(r"\s+", " ", text.replace("_", " ")).strip()


def _physical_sense(wn: Any, word: str) -> Any | None:
    """The most frequent noun sense of ``word`` that is a physical entity and not a person (so "tiger" is the
    cat, not "a fierce or audacious person"); None when WordNet has none."""
    synsets = wn.synsets(clean_text(word).replace(" ", "_"), pos="n")
    physical, person = wn.synset("physical_entity.n.01"), wn.synset("person.n.01")
    for s in synsets:
        above = set(s.closure(lambda x: x.hypernyms() + x.instance_hypernyms()))
        if s != person and person not in above and physical in above:
            return s
    return None


@lru_cache(maxsize=4096)
def wordnet_sense(label: str, aliases: tuple[str, ...] = ()) -> Any | None:
    """The WordNet synset a label names: the label itself, then its aliases, then (for a multi-word label) its last
    word ("potted plant" -> plant) and its other words; None when none of them is in WordNet."""
    from vltools.tools.factcheck._wordnet import get_wordnet

    wn = get_wordnet()
    words = label.split()
    tries = [label, *aliases, *([words[-1], *words[:-1]] if len(words) > 1 else [])]
    for word in tries:
        if word.strip():
            sense = _physical_sense(wn, word)
            if sense is not None:
                return sense
    return None


def wordnet_descriptions(label: str, aliases: tuple[str, ...] = ()) -> list[str]:
    """Class descriptions of ``label`` from WordNet: the gloss's first clause and "a kind of HYPERNYM"
    (to be embedded as "LABEL, DESCRIPTION"); [] when WordNet does not know the label."""
    sense = wordnet_sense(label.strip(), tuple(a.strip() for a in aliases))
    if sense is None:
        return []
    out = [clean_text(sense.definition().split(";")[0])]
    hypers = sense.hypernyms() or sense.instance_hypernyms()
    if hypers:
        out.append(f"a kind of {clean_text(hypers[0].lemma_names()[0])}")
    return [d for d in out if d]
