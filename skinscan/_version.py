"""skinscan's versions, each written in one place (pyproject.toml reads the package's from here).

``__version__`` is the package's release; ``PIPELINE_VERSION`` changes whenever a change to the
analysis changes its numbers, so that stored results of another pipeline are analysed again.
"""

__version__ = "0.4.2"
PIPELINE_VERSION = "0.4.2"


def version_text() -> str:
    """``skinscan 0.4.2 (pipeline 0.4.2)``: what the command, the report and the store say."""
    return f"skinscan {__version__} (pipeline {PIPELINE_VERSION})"
