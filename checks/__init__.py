"""Data contracts (pandera) and reconciliation checks, one module per failure class."""
