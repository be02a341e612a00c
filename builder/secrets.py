"""What counts as a secret's name: such variables are never baked into an image (env:, smoke.env,
labels). Validation refuses them in recipes; the bake stage refuses them again at the template."""

from __future__ import annotations

import re

SECRET_NAME_RE = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|ACCESS_KEY|PRIVATE_KEY|API_KEY)", re.I)
