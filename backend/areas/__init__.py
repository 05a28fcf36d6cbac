"""Districts, towns, villages and grids: one tree of hierarchical codes (区 > 镇/街道 > 村/社区 > 网格)."""
