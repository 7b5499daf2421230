"""``python -m emu.params``: print every scenario key (Markdown)."""
import sys

from emu.params.load import reference

if sys.argv[1:] in (["-h"], ["--help"]):
    print("usage: python -m emu.params\n\nPrint every scenario key (Markdown): what "
          "docs/scenario-keys.md holds.")
elif sys.argv[1:]:
    print(f"python -m emu.params: error: it takes no argument (it prints every scenario key), "
          f"got {' '.join(sys.argv[1:])}", file=sys.stderr)
    sys.exit(2)
else:
    print(reference(), end="")
