"""Private registries over tests/core/sample_tools.py (none of these tools is in vltools' own catalogue)."""

from __future__ import annotations

from vltools.core.registry import Registry

PRIVATE_YAML = """
version: 1
tools:
  - {name: demo.inner, entry: 'tests.core.sample_tools:inner', summary: Wrap text., effects: read_only}
  - {name: demo.outer, entry: 'tests.core.sample_tools:outer', summary: Wrap text twice via demo.inner.,
     effects: read_only}
  - {name: sample.spin, entry: 'tests.core.sample_tools:spin', summary: Hold a lock and spin., effects: read_only}
  - {name: sample.crash, entry: 'tests.core.sample_tools:crash', summary: A bug., effects: read_only}
  - {name: sample.fail_with_details, entry: 'tests.core.sample_tools:fail_with_details',
     summary: Fail with details., effects: read_only}
  - {name: sample.torch_busy, entry: 'tests.core.sample_tools:torch_busy', summary: Busy torch., effects: read_only}
"""


def private_registry(label: str = "private") -> Registry:
    """A fresh registry of the sample tools; ``label`` lets demo.inner report which registry ran it."""
    reg = Registry(Registry.read_file(PRIVATE_YAML, "test"))
    reg.label = label  # type: ignore[attr-defined]
    return reg
