"""Moving the social accounts to the networks app, step 3 of 3: accounts lets go of the models in
Django's state only (their tables are networks' since accounts/0009). After publishing/0003 and
approvals/0002, so that nothing in the state points at accounts.SocialAccount any more."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0009_socialaccount_tables_for_networks'),
        ('networks', '0001_initial'),
        ('publishing', '0003_socialaccount_in_networks'),
        ('approvals', '0002_socialaccount_in_networks'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='SocialAccountUserObjectPermission'),
                migrations.DeleteModel(name='SocialAccountGroupObjectPermission'),
                migrations.DeleteModel(name='SocialAccount'),
                migrations.DeleteModel(name='OAuthApp'),
            ],
            database_operations=[],
        ),
    ]
