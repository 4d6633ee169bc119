"""DR readiness: "if this region died now, what would we lose and how long would it take" (docs/dr.md)."""
