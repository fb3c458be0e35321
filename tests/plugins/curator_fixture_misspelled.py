"""A plugin whose reporter misspells a hook method."""

from typing import Any

from curator import Reporter, hookimpl


class Misspelled(Reporter):
    name = "misspelled"

    @hookimpl
    def curator_task_finsh(self, outcome: Any) -> None:
        pass


@hookimpl
def curator_register_reporters() -> list[Any]:
    return [Misspelled]
