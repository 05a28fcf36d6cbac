"""Dispute mediation (矛盾纠纷多元化解): cases opened on dispute events and their outcomes."""
