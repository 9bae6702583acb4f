"""Landing folder -> raw tables, once per file content, with nothing lost.

``discover`` lists the files per source; ``ingest_landing`` loads the new and changed ones
(a changed file first has its earlier rows removed) and records each in ``meta.files``.
Source loaders live in ``pipeline.ingest.sources``; each writes record-level rows to its
raw table(s) and unreadable records to ``quarantine.rejects``.
"""

from pipeline.ingest.files import DataFile, discover
from pipeline.ingest.run import IngestReport, ingest_landing

__all__ = ["DataFile", "IngestReport", "discover", "ingest_landing"]
