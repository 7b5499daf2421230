"""Run one study of ``emu.study`` with the emu that is installed.

Every script in this folder is ``emu study NAME``: it imports whatever
``emu`` the Python that runs it has installed, never the source tree around
it, and says in one line how to install emu when there is none.
"""

import sys

INSTALL = ("emu is not installed for {python}: run `pip install .` in the emu checkout "
           "(`pip install -e .` to work on it), then run this script again")


def launch(name: str, argv=None) -> int:
    """``emu study NAME ARGV`` (default: the script's arguments), with the
    script's own usage; the exit status."""
    try:
        from emu.cli import study_script  # the one import that may fail: say how to install
    except ModuleNotFoundError as err:
        if err.name != "emu":
            raise
        print(INSTALL.format(python=sys.executable), file=sys.stderr)
        return 2
    return study_script(name, argv)
