"""The file to pass to swift: `--external_plugins swift_plugins/editgrpo/plugin.py`.

swift executes this file under a synthetic module name with this folder first on `sys.path`,
so relative imports do not work here. It puts the repository root on `sys.path` instead (and
takes its own folder off, so module names such as `config` cannot shadow other packages),
imports the package and registers the trainer, ORMs, templates and data sets. No model is
loaded at import.
"""
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_REPO_ROOT = str(_HERE.parents[1])
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from swift_plugins.editgrpo import register  # noqa: E402

REGISTERED = register()
