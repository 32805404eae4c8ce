"""A trainer callback that interrupts a run, shared by the resume tests and the DDP worker (not a test module)."""

from __future__ import annotations

from transformers import TrainerCallback


class StopAt(TrainerCallback):
    """Ends training after step ``step``, as an interruption would; that step's checkpoint is still saved."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
        return control
