-- A device's echo span: the latest run of change numbers that its pushes
-- gave to states of records it holds (echo, see 0013), every number of
-- the run one of them, and the first and last of their mutation numbers.
-- A record written later takes a number above the run, so the run never
-- holds another state. A pull by the device that leaves out the echoes of
-- those mutations leaves out the whole run at once, without reading its
-- rows one by one; rows outside it are read as before. 0 for none.
ALTER TABLE devices ADD COLUMN echo_span_from INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN echo_span_to INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN echo_span_first INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN echo_span_last INTEGER NOT NULL DEFAULT 0;
