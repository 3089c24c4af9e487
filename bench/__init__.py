"""The benchmark of the whole path (`make bench`); see docs/performance.md."""
