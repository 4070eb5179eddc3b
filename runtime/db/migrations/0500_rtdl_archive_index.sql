-- ArchiveWriter's index: one row per immutable archive object (append-only; replay reads this,
-- never a listing, so an object written by a transaction that then rolled back is ignored).
CREATE TABLE rtdl_archive_batches (
  platform_run_id text NOT NULL,
  topic text NOT NULL,
  partition text NOT NULL,
  first_offset numeric NOT NULL,
  last_offset numeric NOT NULL,
  record_count integer NOT NULL CHECK (record_count > 0),
  object_key text NOT NULL,
  sha256 text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, topic, partition, first_offset),
  CHECK (first_offset <= last_offset)
);
SELECT fp_make_append_only('rtdl_archive_batches');
