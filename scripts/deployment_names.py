"""The deployment names of docs/deployment.toml, for the artifact checks.

Every check that compares an artifact (compose, Kubernetes, Terraform, workflows) with the
names the platform agreed on reads them from here, never re-types them.
"""

import pathlib
import tomllib

REPO = pathlib.Path(__file__).resolve().parent.parent
NAMES = tomllib.loads((REPO / "docs" / "deployment.toml").read_text())
SERVICES = NAMES["services"]
