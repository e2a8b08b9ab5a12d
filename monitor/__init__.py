"""CRSWatch daemon core: ingest, clinical grading, storage."""
