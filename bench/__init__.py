"""The benchmark of the whole path (`make bench`); see the README, Performance."""
