"""Whether a listing saw every user the hub counts: a short listing is never taken at its word.

A hub that paginates (JupyterHub 2.0 and later) can hand over less than it has and say
so only in its own numbers:

- a plain list instead of pages: a JupyterHub >= 2.0 answers so when the pagination
  ``Accept`` header does not reach it (a proxy that drops it), cut at its
  ``api_page_max_limit`` without a word;
- a ``next`` of ``null`` on a page whose ``total`` says there are more;
- a ``next`` that skips a page.

``Completeness`` is given every page of one listing in the order they were read, and
says at the end what was missed, if anything. It measures the *offsets* the pages
covered, not the records they held, against the *latest* ``total``: the hub's list may
change while we page (a user created or deleted, a server started or stopped), which
moves later offsets and the count by as much; a listing that covered every offset up to
the hub's last count is complete in the only sense a client can check, and such churn
raises no alarm. Which offsets a page covers depends on the listing. An unfiltered page
covers as many offsets as it holds records, never more than the hub's page size (so
padding cannot hide a skipped page). A ``state=ready`` page covers its whole window: the
hub filters ready users out *after* cutting the window, so such pages can be short or
empty while ``next`` is set, and ``total`` counts every user with a server.

Nothing here speaks HTTP; the runner refuses to act on a listing with a shortfall
(exit status 7).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from idle_cull.hub.client import PAGINATION_MEDIA_TYPE
from idle_cull.hub.pages import UserPage, limit_of, total_of

__all__ = ["Completeness", "gaps"]

Span = tuple[int, int]  # offsets [start, end) one page covered


@dataclass
class Completeness:
    """What the pages of one listing covered, and what that falls short of.

    ``filtered_after_window``: the hub drops records from a page after cutting it
    (``state=ready``). ``paginates``: the hub's release answers in pages (2.0 and later),
    so a plain list from it is a list cut short, not the whole list of an old hub.
    """

    filtered_after_window: bool = False
    paginates: bool = True
    _spans: list[Span] = field(default_factory=list)
    _total: int | None = None  # the latest usable _pagination.total
    _plain: int | None = None  # records in plain-list answers; None: there were none

    def add(self, page: UserPage) -> None:
        """Count one page in, in the order the pages were read."""
        if page.pagination is None:
            self._plain = (self._plain or 0) + len(page.items)
            return
        total = total_of(page)
        if total is not None:
            self._total = total
        self._spans.append((page.offset, page.offset + self._extent(page)))

    def _extent(self, page: UserPage) -> int:
        """How many offsets ``page`` covers, from its own start."""
        window = limit_of(page) or page.limit or len(page.items)
        if self.filtered_after_window:
            return window
        return min(len(page.items), window)

    def shortfall(self) -> str | None:
        """Why the listing is incomplete, in one sentence; ``None`` when it is not.

        A listing whose pages carry no usable ``total`` is not judged: there is no count
        of the hub's to fall short of.
        """
        if self._plain is not None and self.paginates:
            return (
                f"the hub answered the user list with a plain list of {self._plain} users, "
                "not with pages, though its release paginates: something between idle-cull "
                f"and the hub (a proxy?) drops the header 'Accept: {PAGINATION_MEDIA_TYPE}', "
                "and without it the hub cuts the list at its api_page_max_limit unannounced; "
                "let that header through"
            )
        if self._total is None:
            return None
        missing = gaps(self._spans, self._total)
        if not missing:
            return None
        never = sum(end - start for start, end in missing)
        ranges = ", ".join(f"{start}-{end - 1}" for start, end in missing[:3])
        more = f" and {len(missing) - 3} more ranges" if len(missing) > 3 else ""
        return (
            f"the hub counts {self._total} users in this listing, but its pages left "
            f"{never} of them out (offsets {ranges}{more}): its pagination ended early or "
            "skipped pages; check what sits between idle-cull and the hub (a proxy that "
            "rewrites answers?), the next pass lists again"
        )


def gaps(spans: Iterable[Span], total: int) -> list[Span]:
    """The offsets in ``[0, total)`` that no span covers, as sorted ``[start, end)`` ranges."""
    missing: list[Span] = []
    reached = 0
    for start, end in sorted(spans):
        if start > reached:
            missing.append((reached, min(start, total)))
        reached = max(reached, end)
        if reached >= total:
            break
    if reached < total:
        missing.append((reached, total))
    return [(start, end) for start, end in missing if start < end]
