"""HTML of the pickup page: small, accessible, self-contained pages with strict security headers.

Every inserted value is escaped with html.escape. Style and script are inline with a per-response CSP nonce;
nothing is loaded from anywhere else. Without JavaScript everything works except copy-to-clipboard and the
live countdown (the absolute times are always shown).
"""

from __future__ import annotations

import html
import secrets
from datetime import UTC, datetime

import azure.functions as func

from graph.tap import MintedPass
from store.pickups import Pickup

from . import pickup_strings as S
from .pickup_rules import Refusal, Viewer

STYLE = """
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1b1b;background:#fff;margin:0}
main{max-width:40rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.5rem;line-height:1.25}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}
button{font:inherit;padding:.6rem 1.2rem;border:2px solid #0b4f94;border-radius:4px;background:#0b4f94;
color:#fff;cursor:pointer}
button:hover{background:#083a6d}button:focus-visible,a:focus-visible{outline:3px solid #b35c00;outline-offset:2px}
button[disabled]{background:#595959;border-color:#595959}
.pass{font:700 2rem/1.3 ui-monospace,Consolas,monospace;letter-spacing:.1em;padding:.5rem 1rem;border:2px solid
#1b1b1b;border-radius:4px;display:inline-block;user-select:all;word-break:break-all}
.note{border-left:4px solid #b35c00;padding:.25rem 1rem;background:#fff4e5}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem}
"""

SCRIPT = """
(function(){
  function left(ms){if(ms<=0)return document.body.dataset.expired;var s=Math.floor(ms/1000),
    h=Math.floor(s/3600),m=Math.floor(s%3600/60);s=s%60;
    return (h?h+' h ':'')+m+' min '+(h?'':s+' s');}
  function tick(){document.querySelectorAll('[data-until]').forEach(function(el){
    el.textContent=left(Date.parse(el.dataset.until)-Date.now());});}
  tick();setInterval(tick,1000);
  var copy=document.getElementById('copy');
  if(copy){copy.hidden=false;copy.addEventListener('click',function(){
    var text=document.getElementById('pass').textContent,status=document.getElementById('copy-status');
    navigator.clipboard.writeText(text).then(function(){status.textContent=copy.dataset.ok;},
      function(){status.textContent=copy.dataset.failed;});});}
  var form=document.getElementById('reveal');
  if(form){form.addEventListener('submit',function(){form.querySelector('button').disabled=true;});}
})();
"""


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def security_headers(nonce: str) -> dict[str, str]:
    csp = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; img-src 'none'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def page(title: str, body: str, status: int = 200, viewer: Viewer | None = None) -> func.HttpResponse:
    nonce = secrets.token_urlsafe(16)
    signed_in = f"<p>{e(S.SIGNED_IN_AS.format(viewer=viewer.name))}</p>" if viewer else ""
    document = (
        f'<!doctype html><html lang="{S.LANG}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f'<title>{e(title)} – {e(S.PRODUCT)}</title><style nonce="{nonce}">{STYLE}</style></head>'
        f'<body data-expired="{e(S.EXPIRED_NOW)}"><a class="skip" href="#main">{e(S.SKIP_LINK)}</a>'
        f'<main id="main">{body}{signed_in}</main>'
        f'<script nonce="{nonce}">{SCRIPT}</script></body></html>'
    )
    return func.HttpResponse(
        document, status_code=status, mimetype="text/html", charset="utf-8", headers=security_headers(nonce)
    )


def _facts(pickup: Pickup) -> str:
    return (
        f"<dl><dt>{e(S.RESET_WHAT)}</dt><dd>{e(pickup.reset_summary)}</dd>"
        f"<dt>{e(S.RESET_WHEN)}</dt><dd>{e(when(pickup.created_at))}</dd></dl>"
    )


def open_page(pickup: Pickup, viewer: Viewer, action: str) -> func.HttpResponse:
    target = pickup.target_name or pickup.target_id
    body = (
        f"<h1>{e(S.HEADING.format(target=target))}</h1>{_facts(pickup)}"
        f"<dl><dt>{e(S.PICKUP_EXPIRES)}</dt><dd>{e(when(pickup.expires_at))}</dd>"
        f'<dt>{e(S.COUNTDOWN_LABEL)}</dt><dd><span data-until="{_iso(pickup.expires_at)}" aria-live="off">'
        f"{e(when(pickup.expires_at))}</span></dd></dl>"
        f'<p class="note">{e(S.INSTRUCTIONS.format(target=target))}</p>'
        f'<form id="reveal" method="post" action="{e(action)}">'
        f'<input type="hidden" name="nonce" value="{e(pickup.csrf_nonce)}">'
        f'<button type="submit" aria-describedby="reveal-hint">{e(S.REVEAL_BUTTON)}</button>'
        f'<p id="reveal-hint">{e(S.REVEAL_HINT)}</p></form>'
    )
    return page(S.TITLE, body, 200, viewer)


def pass_page(pickup: Pickup, viewer: Viewer, minted: MintedPass) -> func.HttpResponse:
    target = pickup.target_name or pickup.target_id
    body = (
        f"<h1>{e(S.PASS_HEADING.format(target=target))}</h1>"
        f'<p><span id="pass-label">{e(S.PASS_LABEL)}</span>:<br>'
        f'<output id="pass" class="pass" aria-labelledby="pass-label">{e(minted.secret)}</output></p>'
        f'<p><button type="button" id="copy" hidden data-ok="{e(S.COPIED)}" data-failed="{e(S.COPY_FAILED)}">'
        f'{e(S.COPY_BUTTON)}</button> <span id="copy-status" role="status"></span></p>'
        f"<dl><dt>{e(S.PASS_STARTS)}</dt><dd>{e(when(minted.start))}</dd>"
        f"<dt>{e(S.PASS_EXPIRES)}</dt><dd>{e(when(minted.expires))}</dd>"
        f'<dt>{e(S.PASS_COUNTDOWN)}</dt><dd><span data-until="{_iso(minted.expires)}">{e(when(minted.expires))}'
        "</span></dd></dl>"
        f"<p>{e(S.PASS_USE.format(target=target))} "
        f"{e(S.PASS_USE_ONCE if minted.usable_once else S.PASS_USE_MULTI)}</p>"
        f'<p class="note">{e(S.PASS_NOT_AGAIN)}</p>{_facts(pickup)}'
    )
    return page(S.PASS_HEADING.format(target=target), body, 200, viewer)


def revealed_page(pickup: Pickup, viewer: Viewer, *, just_now: bool = False) -> func.HttpResponse:
    target = pickup.target_name or pickup.target_id
    heading = S.ALREADY_REVEALED_HEADING if just_now else S.REVEALED_HEADING.format(target=target)
    by = pickup.revealed_by_name or pickup.revealed_by
    body = f"<h1>{e(heading)}</h1><p>{e(S.REVEALED_BODY.format(at=when(pickup.revealed_at), by=by))}</p>"
    if pickup.pass_expires_at is not None:
        body += f"<dl><dt>{e(S.PASS_EXPIRES)}</dt><dd>{e(when(pickup.pass_expires_at))}</dd></dl>"
    body += _facts(pickup)
    return page(heading, body, 409 if just_now else 200, viewer)


def refusal_page(
    refusal: Refusal, viewer: Viewer | None = None, target: str = "", *, sign_in: str | None = None
) -> func.HttpResponse:
    heading, text = S.REFUSALS.get(refusal.code) or S.PROBLEMS[refusal.code]
    values = {"target": target, **refusal.values}
    body = f"<h1>{e(heading.format(**values))}</h1><p>{e(text.format(**values))}</p>"
    if sign_in:
        body += f'<p><a href="{e(sign_in)}">{e(S.SIGN_IN_LINK)}</a></p>'
    if refusal.code in S.PROBLEMS and refusal.status != 503:
        body += f'<p class="note">{e(S.ADMIN_NOTE)}</p>'
    return page(heading.format(**values), body, refusal.status, viewer)
