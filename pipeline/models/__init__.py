"""Protocol vocabularies (``ocpi``, ``ocpp``, ``status_map``) and the staging row models
(``staging``: pandera models, enforced by ``pipeline.quarantine``).

Vocabularies: ``StrEnum`` names in snake_case, values the wire strings.

One module per protocol (``ocpi``; OCPP lives beside it when needed). Spec wording goes in
docstrings; nothing here touches the warehouse.
"""
