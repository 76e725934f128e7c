"""`trainer.profile.steps=[first, last]`: a JAX profiler trace of those steps (numbered as in
metrics.jsonl, both included) in <run dir>/profile/plugins/profile/<time>/:

    <host>.xplane.pb           TensorBoard's profile plugin: tensorboard --logdir runs/<name>/profile
    perfetto_trace.json.gz     Perfetto: open it at ui.perfetto.dev

Each traced step is annotated (`train`, step_num) so viewers show step boundaries. The
trace stops after the last step's device work has finished. Off (`[]`), the loop pays one
comparison per step.
"""

import contextlib
import logging
from pathlib import Path

import jax

from hydralearn.config.run_dir import RunDir
from hydralearn.config.schema import ProfileConfig

logger = logging.getLogger(__name__)


class Profiler:
    def __init__(self, config: ProfileConfig, *, run_dir: Path):
        self.first, self.last = config.steps or (0, -1)
        self.directory = RunDir(run_dir).profile
        self.active = False

    def step(self, number: int):
        """Context for running step `number`: traced and annotated inside the window."""
        if not self.first <= number <= self.last:
            return contextlib.nullcontext()
        if not self.active:  # the first traced step, or the first after a resume inside the window
            jax.profiler.start_trace(self.directory, create_perfetto_trace=True)
            self.active = True
        return jax.profiler.StepTraceAnnotation("train", step_num=number)

    def finished(self, number: int, outputs) -> None:
        """After step `number` was dispatched: the trace ends once the last step's `outputs`
        are computed."""
        if self.active and number >= self.last:
            jax.block_until_ready(outputs)
            self.stop()

    def stop(self) -> None:
        if self.active:
            self.active = False
            # JAX narrates its trace conversion at INFO; one line of ours says where it went.
            logging.getLogger("jax").setLevel(logging.WARNING)  # the public parent of its modules' loggers
            jax.profiler.stop_trace()
            logger.info("profile of steps %d-%d written to %s (tensorboard --logdir %s, or "
                        "perfetto_trace.json.gz at ui.perfetto.dev)", self.first, self.last,
                        self.directory, self.directory)
