-- The event time of every admission. DF deems an RTDL store complete for a traffic event at time T
-- when the store's consumer group has applied every admitted record of its topics with event time
-- at or before T (runtime/decision/df/store.py): an event-time cut that does not depend on how the
-- admissions of WSP's outputs interleave. NULL only for rows claimed before this migration; DF
-- treats such a row as possibly before T (it waits for it).
ALTER TABLE ig_admissions ADD COLUMN event_ts_micros bigint;
