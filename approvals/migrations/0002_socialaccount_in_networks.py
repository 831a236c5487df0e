"""The social account a policy is bound to is networks.SocialAccount now (see accounts/0009): in
Django's state only, the table and its constraints being the same ones."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0001_initial'),
        ('networks', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='approvalpolicy',
                    name='social_account',
                    field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='approval_policy', to='networks.socialaccount'),
                ),
            ],
            database_operations=[],
        ),
    ]
