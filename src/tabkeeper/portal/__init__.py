"""The billing tab (PRT-1, PRT-2, ACL-2): server-rendered pages under /portal.

A member opens it through a portal session URL (`/portal/enter?token=...`, the token of
POST /v1/portal_sessions); every page reads the same services the API calls. Pages work
without JavaScript (plain forms, 303 redirects); htmx and a few lines of script enhance
them (live add-on totals, modal dialogs). See docs/portal.md.

Modules: `web` (cookies, errors, templates), `views` (what each card shows), `routes`
(pages), `actions` (form posts), `templates/`, `static/`.
"""
