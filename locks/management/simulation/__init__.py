"""`manage.py simulate`'s machinery; with `--workers K`, the engine run as production runs it (DESIGN §5).

- `fleet`: the simulated fleet both modes share — building it, the in-process run, the report, deleting it.
- `clock`: the virtual clock shared by the simulate process and every worker process.
- `processes`: the `qcluster` process groups — start, kill, restart, always clean up.
- `invariants`: what is sampled during the run, as pure functions over a snapshot, with their graces.
- `operator`: staff actions (date moves, cancels, new PIN, retry now, delete all) while commands fly.
- `run`: the loop that plays the scheduler and drives all of the above.

Kept out of `commands/` so Django does not take these modules for commands; under `locks.management` so
they may drive the portal's services like every entry point.
"""
