"""Moving the social accounts to the networks app (DESIGN §1), step 1 of 3: their tables take
the networks app's names. A rename: every row stays where it is, and the foreign keys, grants and
sequences of the tables follow them. networks/0001 then takes the models over in Django's state
(and their content types), publishing/0003 and approvals/0002 point their foreign keys at
networks.SocialAccount, and accounts/0010 lets go of them."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0008_mfa'),
    ]

    operations = [
        migrations.AlterModelTable(name='socialaccount', table='networks_socialaccount'),
        migrations.AlterModelTable(name='oauthapp', table='networks_oauthapp'),
        migrations.AlterModelTable(
            name='socialaccountuserobjectpermission',
            table='networks_socialaccountuserobjectpermission',
        ),
        migrations.AlterModelTable(
            name='socialaccountgroupobjectpermission',
            table='networks_socialaccountgroupobjectpermission',
        ),
        # The name Django gives the index of networks.SocialAccount(team, channel): a database
        # migrated here and a new one end up alike.
        migrations.RenameIndex(
            model_name='socialaccount',
            new_name='networks_so_team_id_4a6a43_idx',
            old_name='accounts_so_team_id_88427f_idx',
        ),
    ]
