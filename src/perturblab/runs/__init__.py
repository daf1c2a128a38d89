"""The contract every perturblab run follows (placeholder, filled in by the runner redesign)."""
