"""Linking the records that each source keeps of one charging session.

Belongs here: the pure matching logic (scoring candidate pairs, one-to-one assignment,
session keys) and the orchestration that runs the set-based SQL in
``assets/sql/lineage/`` around it (``build``). Asset wiring lives in
``assets/lineage_sessions.py``; the OCPP transaction reconstruction is not part of this
package.
"""
