"""The audit log: the events table sealed into a hash chain, verified, exported and pruned."""
