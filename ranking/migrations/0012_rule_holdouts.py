# Rule holdouts: per rank request, whether the shopper was held out of or exposed to each
# matching rule with a holdout (docs/experiments.md, "Rule holdouts").

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ranking", "0011_interleaving"),
    ]

    operations = [
        migrations.AddField(
            model_name="ranklog",
            name="rule_holdouts",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="ranklog",
            index=models.Index(
                condition=models.Q(("rule_holdouts__isnull", False)),
                fields=["customer", "shopper_key", "created_at"],
                name="ranklog_holdout_shopper",
            ),
        ),
    ]
