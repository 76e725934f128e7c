"""The exit codes of hydralearn's commands: the one table (docs/runtime.md shows it to users).

They tell a scheduler or CI what happened: after 2 retrying the same command cannot help,
after 3, 4 or 5 a person or a restart may, and 130 means a person stopped the run.

| code | constant          | meaning                                                             |
|------|-------------------|---------------------------------------------------------------------|
| 0    | SUCCESS_EXIT      | done: completed, already complete, or preempted after saving;       |
|      |                   | hydralearn-diff: the two configs are identical                      |
| 1    | FAILURE_EXIT      | a crash or a run error without a code of its own; a sweep with a    |
|      |                   | failed point                                                        |
| 1    | DIFFER_EXIT       | hydralearn-diff: the two configs differ (as diff(1) does)           |
| 2    | USER_ERROR_EXIT   | refused: a config or usage error, a refused change on resume, a run |
|      |                   | directory held by another process, no restorable checkpoint         |
| 3    | NONFINITE_EXIT    | a non-finite loss or gradient with trainer.nonfinite=stop           |
| 4    | WATCHDOG_EXIT     | no step completed within trainer.watchdog_s                         |
| 5    | STORAGE_EXIT      | the run directory's storage failed: full, read-only, missing, an    |
|      |                   | unreadable checkpoint                                               |
| 130  | INTERRUPTED_EXIT  | Ctrl-C, the shell's convention (128 + SIGINT)                       |

Not ours: 134 is JAX's own abort when a peer of a multi-host job dies (docs/scale-out.md).
A leaf module (imports nothing) so every room that ends a process can name its code.
"""

SUCCESS_EXIT = 0
FAILURE_EXIT = 1
DIFFER_EXIT = 1
USER_ERROR_EXIT = 2
NONFINITE_EXIT = 3
WATCHDOG_EXIT = 4
STORAGE_EXIT = 5
INTERRUPTED_EXIT = 130
