"""argparse with the house error format: one line `hydralearn: error: ...`, exit code 2."""

import argparse

from hydralearn.cli.errors import exit_with
from hydralearn.errors import ConfigError


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        exit_with(ConfigError([f"{message} (see {self.prog} --help)"]))
