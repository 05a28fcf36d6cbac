"""Statistics: closure rates against the 98% benchmark (结案率), overdue events, check-in rates
and alert responses (read-only)."""

# The time zone of every local day, week and month: Beijing time, as the grid offices count.
LOCAL_TZ = "Asia/Shanghai"
