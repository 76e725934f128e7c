"""Runs one job the way Hydra's own `run` does (run directory, .hydra/ record, logging,
callbacks), from a config composed once by hydralearn and checked before anything is
written: a refused run leaves no run directory behind and overwrites nothing."""

from typing import Any, Callable

from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobStatus, configure_log, run_job
from hydra.types import HydraContext, RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict


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


def run(cfg: DictConfig, task: Callable[[DictConfig], Any], *, config_name: str) -> Any:
    """Run `task` as Hydra's single-run mode does; returns its value, re-raises its exception.
    Call inside the Hydra session that composed `cfg` (compose_config.hydra_session)."""
    configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose)
    with open_dict(cfg.hydra):
        OmegaConf.set_readonly(cfg.hydra, False)
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


def _keeping(task: Callable[[DictConfig], Any], failure: list) -> Callable[[DictConfig], Any]:
    """`task`, noting the exception it raises (run_job keeps it only behind that print)."""
    def call(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except Exception as e:
            failure.append(e)
            raise
    return call


def quiet_unless_primary(cfg: DictConfig) -> None:
    """A process other than 0 of a multi-host job prints only warnings and logs to its own
    file (`train.process<N>.log`); process 0 writes the run's console, `train.log` and
    `.hydra/` record. Call once JAX's distributed runtime has started."""
    import jax

    if jax.process_index() == 0:
        return
    logging = cfg.hydra.job_logging
    with open_dict(cfg.hydra):
        OmegaConf.set_readonly(cfg.hydra, False)
        cfg.hydra.output_subdir = None
        if "console" in logging.get("handlers", {}):
            logging.handlers.console.level = "WARNING"
        if "file" in logging.get("handlers", {}):
            logging.handlers.file.filename = (f"{cfg.hydra.run.dir}/{cfg.hydra.job.name}"
                                              f".process{jax.process_index()}.log")
