"""Party branches, party groups, buildings, emergency units, check-ins and one-point calls."""
