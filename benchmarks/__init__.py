"""Benchmark and maintainer code of the repository; not part of the installed package.

``setup.py`` installs ``ride_dive`` only: this folder sits beside ``tools/`` and ``configs/``
and is imported by the tools that drive it, which put the repository root on ``sys.path``:

- :mod:`benchmarks.speed`: the speed measurements of ``tools/benchmark.py speed / experts /
  distill``.
- :mod:`benchmarks.accuracy_suite`: the accuracy suite of ``tools/benchmark.py accuracy``
  (every method, several seeds, the ``BENCHMARKS.md`` tables, the published numbers).
- :mod:`benchmarks.publish`: turning finished runs into model zoo entries and
  ``MODEL_ZOO.md`` (``tools/publish_model_zoo.py``).

The library never imports from here; code here may use any part of the library.
"""
