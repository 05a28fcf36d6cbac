"""Patrols (巡查): workers' tracks, their daily figures, grid coverage and patrol norms."""
