"""Registry-native image assembly (``--assembler registry``): build and publish without a daemon.

Entry points: :func:`assemble_in_registry` (bake), :func:`pull_for_smoke` (smoke),
:func:`move_tag` (publish). See docs/registry-assembly.md.
"""

from builder.registry.assemble import AssembleResult, LayerResult, assemble_in_registry
from builder.registry.client import RegistryClient, RegistryCredentials
from builder.registry.smoke import pull_for_smoke, remove_pulled
from builder.registry.tags import TagMove, move_tag

__all__ = ["AssembleResult", "LayerResult", "RegistryClient", "RegistryCredentials", "TagMove",
           "assemble_in_registry", "move_tag", "pull_for_smoke", "remove_pulled"]
