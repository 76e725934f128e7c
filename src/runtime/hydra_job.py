"""Runs one job the way Hydra's own `run` does (run directory, .hydra/ record, logging,
callbacks), from a config composed once by hydralearn and checked before anything is
written: a refused run leaves no run directory behind and overwrites nothing."""

import dataclasses
from pathlib import Path
from typing import Any, Callable

from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobStatus, configure_log, run_job
from hydra.types import HydraContext, RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from hydralearn.config.compose import to_container


class Callbacks:
    """The config's `hydra.callbacks`, already checked against the allowlist
    (config/allowlist.py), called at the points Hydra calls them."""

    def __init__(self, cfg: DictConfig):
        self.callbacks = [instantiate(node) for node in (cfg.hydra.get("callbacks") or {}).values()]

    def __getattr__(self, hook: str) -> Callable[..., None]:
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(**kwargs: Any) -> None:
            for callback in self.callbacks:
                getattr(callback, hook)(**kwargs)
        return call


@dataclasses.dataclass
class Record:
    """What Hydra's job runner needs of a composed config once it is validated: Hydra's own
    settings (run directory, logging, callbacks, the overrides it records). The job's part of
    `.hydra/config.yaml` is written from the validated TrainConfig, so the composed DictConfig
    is dropped after validation."""
    hydra: DictConfig  # the `hydra` node, its interpolations (e.g. runs/${name}) unresolved
    run_dir: Path

    @classmethod
    def of(cls, cfg: DictConfig) -> "Record":
        # A copy that keeps Hydra's schema (HydraConf), which its job runner checks for;
        # Hydra composes its node read-only, and the runner sets the mode.
        hydra = OmegaConf.masked_copy(cfg, ["hydra"]).hydra
        OmegaConf.set_readonly(hydra, False)
        return cls(hydra=hydra, run_dir=Path(OmegaConf.select(cfg, "hydra.run.dir")).absolute())

    def run(self, config, task: Callable[[], Any], *, config_name: str) -> Any:
        """Run `task` as Hydra's single-run mode does; returns its value, re-raises its
        exception. Call inside the Hydra session that composed the config
        (compose_config.hydra_session)."""
        cfg = OmegaConf.create(to_container(config))
        cfg.hydra = self.hydra  # ${name} and the like resolve against the validated config
        configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose)
        cfg.hydra.mode = RunMode.RUN
        callbacks = Callbacks(cfg)
        callbacks.on_run_start(config=cfg, config_name=config_name)
        failure: list[Exception] = []
        ret = run_job(task_function=_keeping(task, failure), config=cfg, job_dir_key="hydra.run.dir",
                      job_subdir_key=None,
                      hydra_context=HydraContext(config_loader=GlobalHydra.instance().config_loader(),
                                                 callbacks=callbacks))
        callbacks.on_run_end(config=cfg, config_name=config_name, job_return=ret)
        if ret.status is JobStatus.FAILED and failure:
            # Raised here, not by ret.return_value, which first prints "Error executing job with
            # overrides: [...]" to stderr: the CLI prints the one line that says what went wrong.
            raise failure[0]
        return ret.return_value

    def quiet_unless_primary(self) -> None:
        """A process other than 0 of a multi-host job prints only warnings and logs to its own
        file (`train.process<N>.log`); process 0 writes the run's console, `train.log` and
        `.hydra/` record. Call once JAX's distributed runtime has started."""
        import jax

        if jax.process_index() == 0:
            return
        self.hydra.output_subdir = None
        logging = self.hydra.job_logging
        if "console" in logging.get("handlers", {}):
            logging.handlers.console.level = "WARNING"
        if "file" in logging.get("handlers", {}):
            logging.handlers.file.filename = (f"{self.run_dir}/{self.hydra.job.name}"
                                              f".process{jax.process_index()}.log")


def _keeping(task: Callable[[], Any], failure: list) -> Callable[[DictConfig], Any]:
    """`task` as run_job calls it, noting the exception it raises (run_job keeps it only
    behind that print)."""
    def call(_: DictConfig) -> Any:
        try:
            return task()
        except Exception as e:
            failure.append(e)
            raise
    return call
