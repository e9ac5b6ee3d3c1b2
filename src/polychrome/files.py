"""Writing a file atomically: a reader, a crash mid-write or a job finishing beside never sees half a file."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary name beside ``path`` to write to; on success it takes ``path``'s name in one step,
    on an error it is removed and ``path`` is left as it was. Its folder is created.

    ``replace=False`` never replaces a file: if ``path`` exists when the temporary is placed (made by
    anyone, at any time before), ``FileExistsError`` is raised and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        yield temporary
        if replace:
            os.replace(temporary, path)
        else:
            _place_new(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _place_new(temporary: Path, path: Path) -> None:
    """Give ``temporary``'s contents the name ``path``, or raise FileExistsError if that name is taken.

    A rename would silently replace a file that appeared since it was checked; a hard link is made only if
    the name is free, in one step (the temporary is then removed by the caller).
    """
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise
    except OSError:
        # A filesystem without hard links (FAT on a memory card, some network shares): claim the name
        # with an exclusive create, then rename over our own empty claim. A reader may see the empty
        # file for that moment, and a crash between the two steps leaves it (a later run then reports it).
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.replace(temporary, path)
