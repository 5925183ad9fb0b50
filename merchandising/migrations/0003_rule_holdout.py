# Rule holdouts (docs/experiments.md, "Rule holdouts"): a share of shoppers served as if the rule
# did not exist, hashed with the rule's own salt.

import secrets

from django.db import migrations, models

import merchandising.models


def give_each_rule_its_salt(apps, schema_editor):
    """A column default is evaluated once for existing rows: give each rule its own salt, so two
    rules never hold out the same shoppers."""
    Rule = apps.get_model("merchandising", "Rule")
    for rule in Rule.objects.only("pk").iterator():
        Rule.objects.filter(pk=rule.pk).update(holdout_salt=secrets.token_hex(8))


class Migration(migrations.Migration):
    dependencies = [
        ("merchandising", "0002_rule_draft"),
    ]

    operations = [
        migrations.AddField(
            model_name="rule",
            name="holdout_percent",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="rule",
            name="holdout_salt",
            field=models.CharField(
                default=merchandising.models.holdout_salt, editable=False, max_length=32
            ),
        ),
        migrations.RunPython(give_each_rule_its_salt, migrations.RunPython.noop),
    ]
