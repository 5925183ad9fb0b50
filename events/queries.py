"""Query normalisation, shared by events, signals and rules."""

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def normalise_query(query: str | None) -> str:
    """Lower case, accents removed, whitespace collapsed: `" Café  CRÈME "` -> `"cafe creme"`."""
    if not query:
        return ""
    decomposed = unicodedata.normalize("NFKD", query.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", stripped).strip()


def shopper_key(user_id: str | None, session_id: str | None) -> str:
    """Whom per-shopper signals belong to: the user, or else the session. Empty for neither."""
    if user_id:
        return f"u:{user_id}"
    if session_id:
        return f"s:{session_id}"
    return ""
