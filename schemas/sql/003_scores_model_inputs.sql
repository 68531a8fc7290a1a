-- What each score was computed from and against (issue 8): the supervised classifier's
-- own score, the alert threshold in force, and the served feature row, so a label can
-- later be joined with exactly what serving saw. Nullable: rows scored before this
-- migration have none of them.
ALTER TABLE scores
    ADD COLUMN supervised_score double precision,
    ADD COLUMN threshold        double precision,
    ADD COLUMN features         double precision[];
