"""Registry-native image assembly (``--assembler registry``): build and publish without a daemon.

Entry points: :func:`builder.registry.assemble.assemble` (the assembler, through
``builder.assembly.assemble("registry", request)``), :func:`pull_for_smoke` (smoke),
:func:`move_tag` (publish). See docs/registry-assembly.md.
"""

from builder.registry.client import RegistryClient
from builder.registry.smoke import pull_for_smoke, remove_pulled
from builder.registry.tags import TagMove, move_tag

__all__ = ["RegistryClient", "TagMove", "move_tag", "pull_for_smoke", "remove_pulled"]
