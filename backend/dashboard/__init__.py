"""The supervisors' page: one map, one table (一幅图一张表)."""
