"""``bastion alerts …`` and ``bastion monitor run ENDPOINT`` (live drift monitoring).

``bastion alerts list [--endpoint E] [--open]`` shows alerts newest first;
``bastion alerts ack ID [--note TEXT]`` closes one; ``bastion alerts webhook add URL
[--endpoint E]`` registers a webhook (SSRF-checked) and prints its signing secret once;
``bastion alerts webhook list|remove``.  ``bastion monitor run ENDPOINT`` compares the
endpoint's live window with its training reference now and raises (or repeats) a drift
alert; exit code 5 when drift is found, like ``bastion monitor drift``.  It also prunes the
prediction log and decided canaries' samples past ``BASTION_SERVING_LOG_RETENTION_DAYS``,
and sends a new alert's webhook deliveries (waiting a bounded time; what is still pending
stays in the outbox for the gateway's sender or the next run).
"""

from __future__ import annotations

from typing import Annotated

import typer

from bastion.cli._context import home_of as _home
from bastion.cli._context import session, settings
from bastion.cli._render import console, print_json, table
from bastion.core.access.values import DEFAULT_PROJECT

Project = Annotated[str, typer.Option("--project", "-p", help="project name")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]
Endpoint = Annotated[str | None, typer.Option("--endpoint", "-e", help="endpoint name",
                                              show_default=False)]
alerts = typer.Typer(help="Alerts of deployed models and their webhooks.", no_args_is_help=True)
webhook = typer.Typer(help="Webhooks that receive alerts (signed POSTs).", no_args_is_help=True)
_DELIVERY_WAIT = 15.0  # seconds a command sends webhook deliveries before exiting


@alerts.command("list")
def list_alerts(ctx: typer.Context, endpoint: Endpoint = None,
                only_open: Annotated[bool, typer.Option("--open", help="open ones only")] = False,
                as_json: Json = False, project: Project = DEFAULT_PROJECT) -> None:
    """Alerts, newest first (kind, endpoint, severity, summary, acknowledged)."""
    with session(_home(ctx)) as s:
        found = s.ws.alerts.alerts(s.actor, project, endpoint=endpoint, only_open=only_open)
    if as_json:
        print_json([a.to_dict() for a in found])
        return
    table("alerts", ["id", "kind", "endpoint", "severity", "seen", "summary", "raised",
                     "acknowledged"],
          [[a.id, a.kind, a.endpoint, a.severity.value, a.occurrences, a.summary[:80],
            a.created_at, f"{a.acknowledged_by} {a.acknowledged_at}" if not a.open else "open"]
           for a in found])


@alerts.command("ack")
def ack(ctx: typer.Context, alert_id: Annotated[str, typer.Argument(help="alert id")],
        note: Annotated[str, typer.Option("--note", help="why / what was done")] = "",
        project: Project = DEFAULT_PROJECT) -> None:
    """Acknowledge (close) an open alert; a later detection opens a new one."""
    with session(_home(ctx)) as s:
        a = s.ws.alerts.ack(s.actor, project, alert_id, note)
    console.print(f"[green]acknowledged[/] {a.kind} alert {a.id} on {a.endpoint}")


@webhook.command("add")
def webhook_add(ctx: typer.Context, url: Annotated[str, typer.Argument(help="http(s) URL")],
                endpoint: Endpoint = None, project: Project = DEFAULT_PROJECT) -> None:
    """Register a webhook for the project's (or one endpoint's) alerts; prints the secret
    receivers check X-Bastion-Signature with (HMAC-SHA256 of "TIMESTAMP.BODY")."""
    with session(_home(ctx)) as s:
        hook, secret = s.ws.alerts.add_webhook(s.actor, project, url, endpoint)
    console.print(f"[green]webhook added[/] {hook.id} -> {hook.url}")
    console.print(f"signing secret (shown once): {secret.hex()}")


@webhook.command("list")
def webhook_list(ctx: typer.Context, as_json: Json = False,
                 project: Project = DEFAULT_PROJECT) -> None:
    with session(_home(ctx)) as s:
        hooks = s.ws.alerts.webhooks(s.actor, project)
    if as_json:
        print_json([h.to_dict() for h in hooks])
        return
    table("webhooks", ["id", "endpoint", "url", "added", "by"],
          [[h.id, h.endpoint or "(all)", h.to_dict()["url"], h.created_at, h.created_by]
           for h in hooks])


@webhook.command("remove")
def webhook_remove(ctx: typer.Context, webhook_id: Annotated[str, typer.Argument()],
                   project: Project = DEFAULT_PROJECT) -> None:
    with session(_home(ctx)) as s:
        s.ws.alerts.remove_webhook(s.actor, project, webhook_id)
    console.print(f"[green]webhook removed[/] {webhook_id}")


def monitor_run(ctx: typer.Context,
                endpoint: Annotated[str, typer.Argument(help="endpoint to check")],
                as_json: Json = False, project: Project = DEFAULT_PROJECT) -> None:
    """Compare the endpoint's live traffic with its training data now (drift alert)."""
    from bastion.serving.monitor import MonitorOptions

    with session(_home(ctx)) as s:
        s.ws.monitor_options = MonitorOptions.from_settings(settings(_home(ctx)))
        result = s.ws.monitor.run(s.actor, project, endpoint)
        if result.new_alert:
            s.ws.alerts.deliveries.start()
            s.ws.alerts.deliveries.wait_idle(_DELIVERY_WAIT, result.alert_id)
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(
            f"{result.endpoint} ({result.model}) vs {result.reference}: [bold]{result.verdict}"
            f"[/] over {result.rows} sampled rows"
            + (f"; drifted {', '.join(result.drifted)}" if result.drifted else "")
            + (f"; prediction JS {result.prediction_js}" if result.prediction_js is not None
               else "")
            + (f"; alert {result.alert_id}" + (" (new)" if result.new_alert else " (repeat)")
               if result.alert_id else ""))
    if result.alert_id:
        raise typer.Exit(5)


def register_cmds(app: typer.Typer, monitor: typer.Typer) -> None:
    alerts.add_typer(webhook, name="webhook")
    app.add_typer(alerts, name="alerts")
    monitor.command("run")(monitor_run)


__all__ = ["register_cmds"]
