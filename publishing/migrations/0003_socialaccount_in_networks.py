"""The social account the posts' foreign keys point at is networks.SocialAccount now (see
accounts/0009): in Django's state only, the table and its constraints being the same ones."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('networks', '0001_initial'),
        ('publishing', '0002_reconcile_candidates'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='posttarget',
                    name='social_account',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='targets', to='networks.socialaccount'),
                ),
                migrations.AlterField(
                    model_name='publishingfreeze',
                    name='social_account',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, to='networks.socialaccount'),
                ),
                migrations.AlterField(
                    model_name='sandboxpublication',
                    name='social_account',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sandbox_publications', to='networks.socialaccount'),
                ),
            ],
            database_operations=[],
        ),
    ]
