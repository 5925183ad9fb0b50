"""The rank log's feature matrices compressed with LZ4 on PostgreSQL instead of pglz.

Every served request inserts one row whose `features` (100 positions x 28 float32, 11 KB) the
server compresses before storing it out of line. On a bench shop's logged pages that cost
PostgreSQL 0.63 ms of CPU a row with pglz and 0.06 ms with LZ4, for a value 5% larger
(bench/rank_log_cost.py; docs/performance.md, "The rank log's cost to PostgreSQL"). Rows written before keep pglz (PostgreSQL reads both).
LZ4 needs PostgreSQL 14 or later built with it (Debian's, Amazon RDS's); on a server without it
the column keeps pglz and the migration says so.
"""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

ALTER = "ALTER TABLE ranking_ranklog ALTER COLUMN features SET COMPRESSION {}"


def compression(method: str):
    def alter(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        try:
            with transaction.atomic(using=connection.alias):
                schema_editor.execute(ALTER.format(method))
        except DatabaseError as exc:
            logger.warning(
                "ranking_ranklog.features keeps its compression: no %s (%s)", method, exc
            )

    return alter


class Migration(migrations.Migration):
    dependencies = [
        ("ranking", "0014_experiment_layers"),
    ]

    operations = [
        migrations.RunPython(compression("lz4"), compression("pglz")),
    ]
