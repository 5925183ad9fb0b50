"""PostgreSQL's binary COPY of plain tuples, the bulk write of the event log and the rank log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import Cursor, sql


def copy_rows(
    cursor: Cursor[Any], table: str, columns: Sequence[str], rows: Iterable[tuple[object, ...]]
) -> None:
    """COPY `rows` (values in `columns` order) into `table` on a raw psycopg cursor.

    Binary COPY is about three times cheaper to encode than text; it needs the exact column
    types, read from the table rather than repeated by the caller."""
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    target = sql.Identifier(table)
    cursor.execute(sql.SQL("SELECT {} FROM {} LIMIT 0").format(names, target))
    column_types = [column.type_code for column in cursor.description or ()]
    with cursor.copy(
        sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(target, names)
    ) as copy:
        copy.set_types(column_types)
        for row in rows:
            copy.write_row(row)
