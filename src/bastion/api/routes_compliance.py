"""Compliance routes: a framework's report as JSON (default) or self-contained HTML.

``GET /v1/projects/{project}/compliance/{framework}?format=json|html`` runs the
same service as ``bastion compliance report`` (``compliance.report``, audited)
over the shipped catalogue; an officer's catalogue extension is given to the CLI
(``--catalogue FILE``).
"""

from __future__ import annotations

import enum

from fastapi import APIRouter, Depends, Response

from bastion.api.deps import WS, ActorDep, actor

router = APIRouter(prefix="/v1/projects/{project}", dependencies=[Depends(actor)])


class ReportFormat(enum.StrEnum):
    JSON = "json"
    HTML = "html"


@router.get("/compliance/{framework}")
def compliance_report(
    project: str, framework: str, ws: WS, a: ActorDep, format: ReportFormat = ReportFormat.JSON
) -> Response:
    from bastion.governance.compliance_render import render_report_html, render_report_json

    report = ws.compliance.report(a, framework, project)
    if format is ReportFormat.HTML:
        # escaped by the template; the CSP and nosniff keep a browser from running anything
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        }
        return Response(
            render_report_html(report), media_type="text/html; charset=utf-8", headers=headers
        )
    return Response(render_report_json(report), media_type="application/json")


__all__ = ["router"]
