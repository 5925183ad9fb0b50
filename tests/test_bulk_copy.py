"""The binary COPY shared by events ingest and the rank log: a table's column types are read once
a process, and read again after a COPY fails, so a column whose type changed under a running
process costs it one failed batch, not every batch after."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection, transaction

from core.bulk_copy import copy_rows

pytestmark = pytest.mark.django_db

TABLE = "bulk_copy_scratch"


def copy(rows: list[tuple[object, ...]]) -> None:
    with transaction.atomic(), connection.cursor() as wrapper:
        copy_rows(wrapper.cursor, TABLE, ("id", "label"), rows)


def test_a_changed_column_type_costs_one_failed_copy_then_the_types_are_read_again() -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bulk_copy_scratch (id integer, label text)")
    copy([(1, "first")])

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE bulk_copy_scratch ALTER COLUMN id TYPE bigint")
    with pytest.raises(psycopg.Error):  # sent as the integer the types read before said
        copy([(2, "with the old types")])
    copy([(3_000_000_000, "read again")])

    with connection.cursor() as cursor:
        cursor.execute("SELECT id, label FROM bulk_copy_scratch ORDER BY id")
        assert cursor.fetchall() == [(1, "first"), (3_000_000_000, "read again")]
