"""``python -m emu.params``: print every scenario key (Markdown)."""
from emu.params.load import reference

print(reference(), end="")
