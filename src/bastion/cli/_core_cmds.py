"""Workspace, identity, keys and object-store commands."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli._context import home_of as _home
from bastion.cli._context import master_source, session, settings
from bastion.cli._render import console, print_json, table
from bastion.core.access.roles import permission_table
from bastion.core.access.values import DEFAULT_PROJECT, PrincipalKind

users = typer.Typer(help="Users and service accounts.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens.", no_args_is_help=True)
roles = typer.Typer(help="Role bindings and the permission table.", no_args_is_help=True)
projects = typer.Typer(help="Projects (namespaces for roles and assets).", no_args_is_help=True)
keys = typer.Typer(help="Key-encryption and signing keys.", no_args_is_help=True)
store = typer.Typer(help="Encrypted, content-addressed object store.", no_args_is_help=True)

Project = Annotated[str, typer.Option("--project", "-p", help="project name")]


def init(
    ctx: typer.Context,
    database_url: Annotated[
        str | None, typer.Option(help="postgresql://... (default: SQLite in the workspace)")
    ] = None,
    admin: Annotated[str, typer.Option(help="name of the first admin")] = "admin",
    tls: Annotated[bool, typer.Option(help="also create a self-signed TLS pair")] = False,
    audit_witness: Annotated[
        Path | None,
        typer.Option(help="keep the audit witness here, e.g. on another volume "
                     "(default: <home>/audit-head.json; BASTION_AUDIT_WITNESS)"),
    ] = None,
) -> None:
    """Create a workspace: database, blob store, keyring and the first admin."""
    s = settings(_home(ctx))
    home = s.resolved_home()
    from bastion.workspace import Bastion

    ws, token = Bastion.init(
        home,
        master_source(s, confirm=True),
        database_url=database_url or s.database_url,
        admin=admin,
        witness_path=audit_witness or s.audit_witness,
    )
    try:
        if tls:
            from bastion.api.tls import make_self_signed

            cert, key = make_self_signed(home / "tls")
            console.print(f"TLS certificate: {cert}\nTLS key:         {key}")
        console.print(f"[green]Workspace created[/] at {home}")
        console.print(f"admin principal: [bold]{admin}[/] (role admin on every project)")
        console.print("API token (shown once; also saved to the 0600 credentials file):")
        console.print(token.secret, highlight=False, soft_wrap=True)
    finally:
        ws.close()


def whoami(ctx: typer.Context) -> None:
    """Show the acting principal and its role bindings."""
    with session(_home(ctx)) as s:
        principal, bindings = s.ws.access.whoami(s.actor)
    console.print(f"{principal.name} ({principal.kind.value})")
    for b in bindings:
        console.print(f"  {b.role} in {b.project}")


@users.command("create")
def users_create(
    ctx: typer.Context,
    name: str,
    service: Annotated[bool, typer.Option(help="a service account, not a person")] = False,
) -> None:
    with session(_home(ctx)) as s:
        p = s.ws.access.create_principal(
            s.actor, name, PrincipalKind.SERVICE if service else PrincipalKind.USER
        )
    console.print(f"created {p.kind.value} {p.name}")


@users.command("list")
def users_list(ctx: typer.Context) -> None:
    with session(_home(ctx)) as s:
        rows = s.ws.access.principals(s.actor)
    table(
        "Principals",
        ["name", "kind", "created", "disabled"],
        [(p.name, p.kind.value, p.created_at, p.disabled) for p in rows],
    )


@users.command("disable")
def users_disable(ctx: typer.Context, name: str) -> None:
    with session(_home(ctx)) as s:
        s.ws.access.disable_principal(s.actor, name)
    console.print(f"disabled {name}; its tokens no longer authenticate")


@tokens.command("create")
def tokens_create(
    ctx: typer.Context,
    principal: str,
    description: Annotated[str, typer.Option()] = "",
    expires_days: Annotated[int, typer.Option(help="0 = never expires")] = 90,
) -> None:
    """Issue a token; the secret is printed once."""
    with session(_home(ctx)) as s:
        issued = s.ws.access.create_token(
            s.actor,
            principal,
            description=description,
            expires_in=dt.timedelta(days=expires_days) if expires_days else None,
        )
    console.print(f"token id {issued.record.id}, expires {issued.record.expires_at or 'never'}")
    console.print(issued.secret, highlight=False, soft_wrap=True)


@tokens.command("list")
def tokens_list(ctx: typer.Context, principal: str) -> None:
    with session(_home(ctx)) as s:
        rows = s.ws.access.tokens(s.actor, principal)
    table(
        "Tokens",
        ["id", "issued by token", "description", "created", "expires", "revoked", "last used"],
        [
            (
                t.id,
                t.parent_id or "-",
                t.description,
                t.created_at,
                t.expires_at,
                t.revoked_at,
                t.last_used_at,
            )
            for t in rows
        ],
    )


@tokens.command("revoke")
def tokens_revoke(ctx: typer.Context, token_id: str) -> None:
    with session(_home(ctx)) as s:
        t = s.ws.access.revoke_token(s.actor, token_id)
    console.print(f"revoked token {t.id} at {t.revoked_at}, and every token issued under it")


@roles.command("bind")
def roles_bind(
    ctx: typer.Context,
    principal: str,
    role: str,
    project: Annotated[
        str, typer.Option("--project", "-p", help="project or '*'")
    ] = DEFAULT_PROJECT,
) -> None:
    with session(_home(ctx)) as s:
        b = s.ws.access.bind(s.actor, principal, role, project)
    console.print(f"{b.principal_name} is now {b.role} in {b.project}")


@roles.command("unbind")
def roles_unbind(
    ctx: typer.Context,
    principal: str,
    role: str,
    project: Annotated[str, typer.Option("--project", "-p")] = DEFAULT_PROJECT,
) -> None:
    with session(_home(ctx)) as s:
        s.ws.access.unbind(s.actor, principal, role, project)
    console.print(f"removed {role} in {project} from {principal}")


@roles.command("list")
def roles_list(ctx: typer.Context, principal: Annotated[str | None, typer.Option()] = None) -> None:
    with session(_home(ctx)) as s:
        rows = s.ws.access.bindings(s.actor, principal)
    table(
        "Role bindings",
        ["principal", "role", "project", "granted by", "at"],
        [(b.principal_name, b.role, b.project, b.created_by, b.created_at) for b in rows],
    )


@roles.command("table")
def roles_table() -> None:
    """The permission table: which role may take which action."""
    table(
        "Permissions",
        ["action", "description", "roles"],
        [(a, d, ", ".join(r)) for a, d, r in permission_table()],
    )


@projects.command("create")
def projects_create(
    ctx: typer.Context, name: str, description: Annotated[str, typer.Option()] = ""
) -> None:
    with session(_home(ctx)) as s:
        p = s.ws.access.create_project(s.actor, name, description)
    console.print(f"created project {p.name}")


@projects.command("list")
def projects_list(ctx: typer.Context) -> None:
    with session(_home(ctx)) as s:
        rows = s.ws.access.projects(s.actor)
    table(
        "Projects",
        ["name", "created", "by", "description"],
        [(p.name, p.created_at, p.created_by, p.description) for p in rows],
    )


@keys.command("list")
def keys_list(ctx: typer.Context) -> None:
    with session(_home(ctx)) as s:
        keks, signing, usage = s.ws.keys.list(s.actor)
    table(
        "Key-encryption keys",
        ["version", "status", "created", "data keys wrapped"],
        [(k.version, k.status.value, k.created_at, usage.get(k.version, 0)) for k in keks],
    )
    table(
        "Signing keys",
        ["key id", "purpose", "algorithm", "status", "created"],
        [(k.key_id, k.purpose, k.algorithm.value, k.status.value, k.created_at) for k in signing],
    )


@keys.command("rotate")
def keys_rotate(ctx: typer.Context) -> None:
    """Add a KEK version and re-wrap every data key (no data is re-encrypted)."""
    with session(_home(ctx)) as s:
        r = s.ws.keys.rotate(s.actor)
    console.print(f"active KEK is now v{r.new_version}; re-wrapped {r.rewrapped} data keys")


@keys.command("retire")
def keys_retire(ctx: typer.Context, version: int) -> None:
    with session(_home(ctx)) as s:
        s.ws.keys.retire(s.actor, version)
    console.print(f"KEK v{version} retired")


@keys.command("rotate-signing")
def keys_rotate_signing(ctx: typer.Context, purpose: str) -> None:
    with session(_home(ctx)) as s:
        key_id = s.ws.keys.rotate_signing(s.actor, purpose)
    console.print(f"new signing key {key_id}")


@keys.command("revoke-signing")
def keys_revoke_signing(ctx: typer.Context, key_id: str) -> None:
    with session(_home(ctx)) as s:
        taken_out = s.ws.revoke_signing_key(s.actor, key_id)
    console.print(f"revoked signing key {key_id}")
    for endpoint in taken_out:
        console.print(f"taken out of service: {endpoint} (signed by the revoked key)")


@store.command("put")
def store_put(
    ctx: typer.Context,
    file: Path,
    name: Annotated[str | None, typer.Option(help="object name (default: file name)")] = None,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Encrypt and store a file under a name in a project."""
    with session(_home(ctx)) as s:
        o = s.ws.objects.put(s.actor, project, name or file.name, file)
    console.print(f"stored {o.name} ({o.size} bytes) sha256:{o.digest}")


@store.command("get")
def store_get(
    ctx: typer.Context,
    name: str,
    output: Annotated[Path, typer.Option("--output", "-o")],
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Decrypt an object to a file (written only after full verification)."""
    with session(_home(ctx)) as s:
        o = s.ws.objects.get(s.actor, project, name, output)
    console.print(f"wrote {output} ({o.size} bytes, sha256:{o.digest} verified)")


@store.command("list")
def store_list(ctx: typer.Context, project: Project = DEFAULT_PROJECT) -> None:
    with session(_home(ctx)) as s:
        rows = s.ws.objects.list(s.actor, project)
    table(
        "Objects",
        ["name", "size", "sha256", "by", "at"],
        [(o.name, o.size, o.digest[:16], o.created_by, o.created_at) for o in rows],
    )


@store.command("fsck")
def store_fsck(
    ctx: typer.Context,
    repair: Annotated[
        bool,
        typer.Option(
            help="also delete leftovers of interrupted writes and blobs nothing references "
            "(store.repair)"
        ),
    ] = False,
    grace_minutes: Annotated[
        float,
        typer.Option(
            min=0, help="spare unreferenced blobs younger than this (a write may be finishing)"
        ),
    ] = 60,
) -> None:
    """Verify every stored object (read-only); --repair removes leftovers of
    interrupted writes and unreferenced blobs older than the grace period, and
    needs the admin action store.repair."""
    with session(_home(ctx)) as s:
        report = s.ws.objects.fsck(
            s.actor, repair=repair, grace=dt.timedelta(minutes=grace_minutes)
        )
    print_json(
        {
            "checked": report.checked,
            "corrupted": list(report.corrupted),
            "orphans_found": report.orphans_found,
            "incomplete_found": report.incomplete_found,
            "orphans_removed": report.orphans_removed,
            "incomplete_removed": report.incomplete_removed,
            "unreferenced_found": report.unreferenced_found,
            "unreferenced_removed": report.unreferenced_removed,
            "repaired": report.repaired,
        }
    )
    if not report.ok:
        raise typer.Exit(4)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8700,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate (enables HTTPS)")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key")] = None,
) -> None:
    """Run the REST API (FastAPI under uvicorn)."""
    from bastion.api.server import serve as run_server

    s = settings(_home(ctx))
    home = s.resolved_home()
    if tls_cert is None and (home / "tls" / "cert.pem").exists():
        tls_cert, tls_key = home / "tls" / "cert.pem", home / "tls" / "key.pem"
    run_server(s, host=host, port=port, tls_cert=tls_cert, tls_key=tls_key)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(whoami)
    app.command()(serve)
    app.add_typer(users, name="users")
    app.add_typer(tokens, name="tokens")
    app.add_typer(roles, name="roles")
    app.add_typer(projects, name="projects")
    app.add_typer(keys, name="keys")
    app.add_typer(store, name="store")
