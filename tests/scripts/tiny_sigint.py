"""The tiny regression model, sending itself a real Ctrl-C (SIGINT) once, at a chosen global step.

SIGINT goes to this process at the first ``training_step`` that sees ``sigint_at_step``, once: the
file ``sigint_once_file`` marks it done, so a resumed study is not interrupted again.
"""

import os
import signal
from pathlib import Path

from tiny_regression import TinyData, TinyRegression


class SigintRegression(TinyRegression):
    def __init__(self, sigint_at_step: int = -1, sigint_once_file: str = ""):
        super().__init__()
        self.sigint_at_step = sigint_at_step
        self.sigint_once_file = sigint_once_file

    def training_step(self, batch, batch_idx):
        if self.global_step == self.sigint_at_step and not Path(self.sigint_once_file).exists():
            Path(self.sigint_once_file).touch()
            os.kill(os.getpid(), signal.SIGINT)
        return super().training_step(batch, batch_idx)


class SigintData(TinyData):
    pass
