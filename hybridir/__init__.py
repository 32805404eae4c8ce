"""hybridir: the reproducible companion to arXiv 2408.10536 (hybrid batch sampling for multilingual retrieval).

Stages follow the data flow: :mod:`hybridir.data` → :mod:`hybridir.models` → :mod:`hybridir.encoding`
→ :mod:`hybridir.evaluation` → :mod:`hybridir.tables` / :mod:`hybridir.figures` → :mod:`hybridir.book`.
"""

from importlib.metadata import version

__version__ = version("hybridir")
