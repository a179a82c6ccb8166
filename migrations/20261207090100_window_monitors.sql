-- A maintenance window pauses Drop's BetterStack monitors and resumes them when it closes.
-- Which ones it paused is written before each pause (a monitor someone had paused already is
-- never listed), so a run resumed after a crash resumes exactly those and no others.
ALTER TABLE console.maintenance_windows ADD COLUMN paused_monitors text[] NOT NULL DEFAULT '{}';
