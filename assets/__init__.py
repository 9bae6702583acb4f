"""Dagster assets by layer: raw, staging, lineage, recon, marts. SQL lives in ``assets/sql``."""
