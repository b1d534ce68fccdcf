-- 0005_target_range.sql — the range of a dataset's targets, kept at upload, so a
-- job whose loss needs targets in [0, 1] (binary crossentropy) is refused when it
-- is submitted instead of failing at its first batch. Datasets stored before have
-- NULL (unknown): for them the trainer's own check still catches it at run time.

ALTER TABLE datasets ADD COLUMN y_min REAL;
ALTER TABLE datasets ADD COLUMN y_max REAL;
