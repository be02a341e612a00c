"""The one Docker adapter: every module that talks to the local engine goes through here.

Public API (other stages import these names; keep them stable):

* ``docker_client(stage, timeout=600)`` - a pinged SDK client, or a BuilderError naming ``stage``;
  ``engine_version(timeout=5)`` - the engine's version (doctor), None when none answers;
* ``image_id(client, ref)`` - the image id of ``ref`` or None; ``ensure_image`` - a tag made once under
  a cache lock; ``wait_removed(client, container_id)``;
* ``tar_context(files)`` - a deterministic build context; ``build(client, context, ...)`` -> ``BuildOutcome``;
  ``import_image(client, chunks, ref, changes=..., stage=...)`` - ``docker import`` of a rootfs tar;
* ``check_event(event, doing, stage=...)`` - THE in-band ``error``/``errorDetail`` check of every engine
  stream (build, pull, push, import): raises ``EngineEventError`` (a BuilderError with ``.detail``);
* ``pull(client, repository, tag, what=..., stage=...)`` - a pull under a deadline that follows the bytes;
* ``push_tag``/``pushed_name``/``push_deadline``/``PushError``/``PushOutcome``/``classify`` - the push;
  a pull or push without ``auth_config`` sends builder.credentials' answer for the registry (``{}`` when
  none), never None (docker-py would then read Docker's config and run a helper without a timeout);
* ``Progress`` - the rich progress bars (a terminal only).

The SDK reports build, pull and push failures in-band with HTTP 200 (containers-and-registries.md §2.2,
§4; docker/docker-py#3161), which is why the low-level API is used and every event goes through
``check_event``.
"""

from __future__ import annotations

from builder.engine.building import BuildOutcome, build, import_image, tar_context
from builder.engine.client import docker_client, engine_version, ensure_image, image_id, wait_removed
from builder.engine.events import EngineEventError, check_event
from builder.engine.progress import Progress
from builder.engine.pulling import pull
from builder.engine.pushing import PushError, PushOutcome, classify, push_deadline, push_tag, pushed_name

__all__ = ["BuildOutcome", "EngineEventError", "Progress", "PushError", "PushOutcome", "build", "check_event",
           "classify", "docker_client", "engine_version", "ensure_image", "image_id", "import_image", "pull", "push_deadline",
           "push_tag", "pushed_name", "tar_context", "wait_removed"]
