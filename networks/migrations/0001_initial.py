"""Moving the social accounts to the networks app (DESIGN §1), step 2 of 3: the networks app takes
the models over in Django's state (their tables are its own since accounts/0009), and their
content types are re-labelled `networks.*` with their ids kept, so that the permissions on them
(auth's, e.g. draft_socialaccount, and django-guardian's per-account grants, which name the
permission) and the admin's log entries follow without a row rewritten."""

import django.db.models.deletion
import networks.models
from django.conf import settings
from django.db import migrations, models

MOVED = (
    'socialaccount',
    'oauthapp',
    'socialaccountuserobjectpermission',
    'socialaccountgroupobjectpermission',
)


def _relabel(apps, schema_editor, *, old: str, new: str) -> None:
    ContentType = apps.get_model('contenttypes', 'ContentType')
    Permission = apps.get_model('auth', 'Permission')
    types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MOVED:
        moving = types.filter(app_label=old, model=model).first()
        if moving is None:  # a new database: content types are made after its migrations
            continue
        stale = types.filter(app_label=new, model=model).first()
        if stale is not None:
            # Made by a `migrate` stopped between two steps of the move (post_migrate makes the
            # content types of the state it reached) and holding only its default permissions:
            # the moving one, which the grants name, takes its place.
            Permission.objects.using(schema_editor.connection.alias).filter(
                content_type=stale
            ).delete()
            stale.delete()
        moving.app_label = new
        moving.save(update_fields=['app_label'])


def relabel_forwards(apps, schema_editor):
    _relabel(apps, schema_editor, old='accounts', new='networks')


def relabel_backwards(apps, schema_editor):
    _relabel(apps, schema_editor, old='networks', new='accounts')


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0009_socialaccount_tables_for_networks'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='OAuthApp',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('channel', models.CharField(choices=[('mastodon', 'Mastodon'), ('bluesky', 'Bluesky'), ('x', 'X'), ('facebook', 'Facebook Page'), ('instagram', 'Instagram'), ('linkedin', 'LinkedIn'), ('webhook', 'Webhook'), ('sandbox', 'Sandbox')], max_length=20)),
                        ('base_url', networks.models.HttpsURLField(max_length=500)),
                        ('redirect_uri', models.URLField(max_length=500)),
                        ('client_id', models.CharField(max_length=500)),
                        ('client_secret_encrypted', models.TextField(blank=True, editable=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        'constraints': [models.UniqueConstraint(fields=('channel', 'base_url', 'redirect_uri'), name='unique_oauth_app_per_server'), models.CheckConstraint(condition=models.Q(('channel__in', ['mastodon', 'bluesky', 'x', 'facebook', 'instagram', 'linkedin', 'webhook', 'sandbox'])), name='oauthapp_channel_valid')],
                    },
                ),
                migrations.CreateModel(
                    name='SocialAccount',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('channel', models.CharField(choices=[('mastodon', 'Mastodon'), ('bluesky', 'Bluesky'), ('x', 'X'), ('facebook', 'Facebook Page'), ('instagram', 'Instagram'), ('linkedin', 'LinkedIn'), ('webhook', 'Webhook'), ('sandbox', 'Sandbox')], max_length=20)),
                        ('handle', models.CharField(max_length=200)),
                        ('display_name', models.CharField(blank=True, max_length=200)),
                        ('external_id', models.CharField(blank=True, max_length=200)),
                        ('base_url', networks.models.HttpsURLField(blank=True, max_length=500)),
                        ('access_token_encrypted', models.TextField(blank=True, editable=False)),
                        ('refresh_token_encrypted', models.TextField(blank=True, editable=False)),
                        ('expires_at', models.DateTimeField(blank=True, null=True)),
                        ('status', models.CharField(choices=[('connected', 'Connected'), ('needs_reconnect', 'Needs reconnect'), ('disconnected', 'Disconnected')], default='connected', max_length=20)),
                        ('sandbox', models.BooleanField(default=False)),
                        ('network_settings', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('team', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='social_accounts', to='accounts.team')),
                    ],
                    options={
                        'ordering': ['channel', 'handle'],
                        'permissions': [('draft_socialaccount', 'Can draft posts for this account')],
                    },
                ),
                migrations.CreateModel(
                    name='SocialAccountGroupObjectPermission',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('content_object', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='networks.socialaccount')),
                        ('group', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='auth.group')),
                        ('permission', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='auth.permission')),
                    ],
                    options={
                        'abstract': False,
                    },
                ),
                migrations.CreateModel(
                    name='SocialAccountUserObjectPermission',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('content_object', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='networks.socialaccount')),
                        ('permission', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='auth.permission')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'abstract': False,
                    },
                ),
                migrations.AddIndex(
                    model_name='socialaccount',
                    index=models.Index(fields=['team', 'channel'], name='networks_so_team_id_4a6a43_idx'),
                ),
                migrations.AddConstraint(
                    model_name='socialaccount',
                    constraint=models.UniqueConstraint(fields=('channel', 'base_url', 'handle'), name='unique_account_per_network'),
                ),
                migrations.AddConstraint(
                    model_name='socialaccount',
                    constraint=models.CheckConstraint(condition=models.Q(('channel__in', ['mastodon', 'bluesky', 'x', 'facebook', 'instagram', 'linkedin', 'webhook', 'sandbox'])), name='socialaccount_channel_valid'),
                ),
                migrations.AddConstraint(
                    model_name='socialaccount',
                    constraint=models.CheckConstraint(condition=models.Q(('status__in', ['connected', 'needs_reconnect', 'disconnected'])), name='socialaccount_status_valid'),
                ),
                migrations.AlterUniqueTogether(
                    name='socialaccountgroupobjectpermission',
                    unique_together={('group', 'permission', 'content_object')},
                ),
                migrations.AlterUniqueTogether(
                    name='socialaccountuserobjectpermission',
                    unique_together={('user', 'permission', 'content_object')},
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(relabel_forwards, relabel_backwards),
    ]
