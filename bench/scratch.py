"""The scratch database a benchmark makes on the server in DATABASE_URL, and drops after."""


class ScratchError(Exception):
    """The server refused to make the scratch database."""


def admin_execute(admin: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


def recreate(admin: str, name: str) -> None:
    """Drop (a killed run may have left it behind; it is ours by name) and create `name`."""
    import psycopg

    try:
        admin_execute(
            admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"
        )
    except psycopg.Error as error:
        raise ScratchError(f"cannot create {name} on that server: {error}".strip()) from None


def drop(admin: str, name: str) -> None:
    admin_execute(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
