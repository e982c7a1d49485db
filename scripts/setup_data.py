"""Lay out data that does not come from PyPI (run by install.sh; safe to re-run)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# --- WordNet for graph.fact_check / natlog.* (issue 5) ---------------------------------
# Debian's wordnet-base ships WordNet 3.0 in /usr/share/wordnet without the `lexnames` file
# that nltk needs. nltk also refuses roots with symlinks leaving them or writable files, so the
# files are COPIED (0644) into <venv>/share/vltools/nltk_data/corpora/wordnet/.
WORDNET_SRC = Path(os.environ.get("VLTOOLS_WORDNET_SRC", "/usr/share/wordnet"))
NLTK_ROOT = Path(sys.prefix) / "share" / "vltools" / "nltk_data"
LEXNAMES = [
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation",
    "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative",
    "verb.weather", "adj.ppl",
]  # fmt: skip
_SYNTACTIC = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


def setup_wordnet(src: Path = WORDNET_SRC, root: Path = NLTK_ROOT) -> bool:
    """Copy WordNet 3.0 into an nltk data root; returns False (with a warning) when it is missing."""
    if not (src / "data.noun").is_file():
        sys.stderr.write(f"warning: WordNet not found in {src} (apt-get install wordnet-base); natlog.* needs it\n")
        return False
    dest = root / "corpora" / "wordnet"
    dest.mkdir(parents=True, exist_ok=True)
    for d in (root, root / "corpora", dest):
        d.chmod(0o755)
    for f in sorted(src.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            target = dest / f.name
            if target.is_symlink():
                target.unlink()
            shutil.copyfile(f, target)
            target.chmod(0o644)
    sense = dest / "index.sense"
    if not (src / "index.sense").is_file() and not (sense.is_file() and sense.stat().st_size > 0):
        _write_index_sense(root, dest)  # ~30 s, once
    lex = "".join(f"{i:02d}\t{n}\t{_SYNTACTIC[n.split('.')[0]]}\n" for i, n in enumerate(LEXNAMES))
    (dest / "lexnames").write_text(lex)
    (dest / "lexnames").chmod(0o644)
    sys.stderr.write(f"WordNet laid out for nltk in {root}\n")
    return True


def _write_index_sense(root: Path, dest: Path) -> None:
    """Derive index.sense (sense key -> synset) from the data files; Debian does not ship it."""
    lex = "".join(f"{i:02d}\t{n}\t{_SYNTACTIC[n.split('.')[0]]}\n" for i, n in enumerate(LEXNAMES))
    (dest / "lexnames").write_text(lex)
    (dest / "index.sense").write_text("")  # nltk opens it while loading; filled below
    import nltk

    nltk.data.path.insert(0, str(root))
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    wn = WordNetCorpusReader(str(dest), None)
    counts = {}
    for line in open(dest / "cntlist.rev", encoding="utf-8"):
        key, _, cnt = line.split()
        counts[key] = int(cnt)
    lines = []
    for pos, fn in (("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv")):
        for line in open(dest / f"index.{fn}", encoding="utf-8"):
            if line.startswith(" "):
                continue
            f = line.split()
            name, n_ptr = f[0], int(f[3])
            for i, off in enumerate(f[4 + n_ptr + 2 :], 1):
                for lem in wn.synset_from_pos_and_offset(pos, int(off)).lemmas():
                    if lem.name().lower() == name:
                        key = lem.key()
                        lines.append(f"{key} {int(off):08d} {i} {counts.get(key, 0)}\n")
                        break
    lines.sort()
    (dest / "index.sense").write_text("".join(lines))
    (dest / "index.sense").chmod(0o644)


def main() -> int:
    # Sections are added by the families that need them (e.g. WordNet for graph.fact_check).
    setup_wordnet()
    return 0


if __name__ == "__main__":
    sys.exit(main())
