"""Caches of the editor: faces and pictures made from a photo, keyed by a digest of its pixels."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from PIL import Image


class PictureCache:
    """The last ``keep`` things made by key (thread-safe): a photo's faces, downscaled copies of it and
    whole photos converted to another modality, which an expression slider does not change."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._pictures: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.made = 0  # how many pictures were made (cache misses)

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The picture of ``key``, made by ``make()`` the first time (and again once it has been dropped)."""
        with self._lock:
            if key in self._pictures:
                self._pictures.move_to_end(key)
                return self._pictures[key]
        picture = make()
        with self._lock:
            self.made += 1
            self._pictures[key] = picture
            while len(self._pictures) > self.keep:
                self._pictures.popitem(last=False)
        return picture

    def __len__(self) -> int:
        return len(self._pictures)


def photo_key(photo: Image.Image) -> str:
    """A digest of a picture's size and pixels (the editor's cache key)."""
    return hashlib.blake2b(f"{photo.size}{photo.mode}".encode() + photo.tobytes(), digest_size=16).hexdigest()
