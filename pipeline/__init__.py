"""chargeline: nightly lineage and reconciliation for EV charging networks."""

__version__ = "0.1.0"
