"""Training students from a frozen snapshot: config → data → loss → loop → checkpoints.

Importing this package pulls in nothing heavy; torch and transformers load with `loop`."""
