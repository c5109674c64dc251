"""The static site: `build` renders it from run directories and the registry; `serve` serves it."""

from peaktrade.site.job import BuildResult, build, build_now

__all__ = ["BuildResult", "build", "build_now"]
