"""Memory: what a run used (`peaks`)."""
