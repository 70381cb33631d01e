"""The CLI's own wiring: the listed command modules, and where the command modules find what they share."""

import pytest

from mirror_core import cli, commands


def test_a_typo_in_the_command_list_fails_loudly(monkeypatch):
    """A misspelt module must stop the CLI, not drop its commands from `--help` without a word."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, "mirror_core.commands.evalute"])
    with pytest.raises(ModuleNotFoundError) as exc:
        cli.build_parser()
    assert exc.value.name == "mirror_core.commands.evalute"


def test_every_listed_command_module_registers(monkeypatch):
    registered = []
    real = cli.importlib.import_module

    def spy(name):
        registered.append(name)
        return real(name)

    monkeypatch.setattr(cli.importlib, "import_module", spy)
    cli.build_parser()
    assert registered == cli.COMMAND_MODULES


def test_print_wait_is_the_one_shared_by_cli_and_command_modules():
    # cli.print_wait stays importable for callers written against cli; it is the commands' function.
    assert cli.print_wait is commands.print_wait
