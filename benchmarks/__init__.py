"""`make bench`: load generators, benchmark models, a reference server, scenarios and reports."""
