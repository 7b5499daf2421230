"""Numbers as users type them: in ASCII digits.

Python's ``int`` and ``float`` read any Unicode digit (``int("６４")`` is
64, ``float("١.٥")`` is 1.5), which a TOML value or a scenario key never
accepts; an option's number is read as they are, so that ``--entries ６４``
is refused like ``--set seed=６４``, not run as 64.
"""


def int_text(text: str) -> int:
    """The integer ``text`` writes in ASCII, in any base Python reads
    (``4096``, ``0x1000``, ``1_000``); ValueError otherwise."""
    if not text.isascii():
        raise ValueError(f"not an ASCII integer: {text!r}")
    return int(text, 0)


def float_text(text: str) -> float:
    """The number ``text`` writes in ASCII (``0.5``, ``1e3``, ``nan``);
    ValueError otherwise."""
    if not text.isascii():
        raise ValueError(f"not an ASCII number: {text!r}")
    return float(text)


def plain(value):
    """A numpy scalar as the Python value it holds (``np.int64(5)`` is 5,
    ``np.float64(0.5)`` 0.5, ``np.bool_(True)`` True), so that an option
    given from an array is read, shown and written to JSON as a Python number
    is; any other value as it is."""
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        try:
            return value.item()
        except (AttributeError, TypeError, ValueError):
            return value
    return value
