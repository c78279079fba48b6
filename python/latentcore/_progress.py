"""The one progress bar of every long call: tqdm when ``verbose``, else nothing."""

from __future__ import annotations


class Progress:
    """A tqdm bar of ``total`` ``unit``s (None: unknown) when ``verbose``;
    without it every method does nothing, so callers need no branches."""

    def __init__(self, total: int | None, verbose: bool, desc: str, unit: str):
        self.bar = None
        if verbose:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit)

    def update(self, n: int = 1, **postfix) -> None:
        """Advances by n units and shows ``postfix`` (name=value) beside the bar."""
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(**postfix)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
