"""Notices out: e-mail over SMTP and signed webhooks, from a transactional outbox (NOT-1,
NOT-2, TRI-3, ACL-1).

The design:
- The outbox. A service that changes something writes a `notices` row in the same
  transaction (services/records.py `notify`), once per (organization, kind, dedupe key):
  if the change commits, so does its notice; if the process dies, nothing is lost.
- Fan-out (fanout.py). The dispatcher turns each new notice into one `deliveries` row
  per destination: an e-mail to each owner and billing admin of the organization, a
  webhook to each enabled endpoint of the platform that wants the kind (kinds.py). The
  row's `message_id` is fixed then; UNIQUE(notice, channel, destination) makes each
  destination get one row, however often fan-out runs.
- Sending (dispatcher.py). A due delivery is claimed (`sending`) and committed, sent
  outside any transaction (email.py over smtplib, webhooks.py over httpx, signed per
  Standard Webhooks), and its outcome recorded in another transaction. Failed tries come
  back with exponential backoff for 3 days; a claim left by a crash is taken over after
  a lease and sent again with the same id, so receivers can drop the duplicate. Nothing
  is sent twice to the same destination for the same notice but for that case.
- Texts (templates.py, templates/). One Jinja2 template per kind, one for all usage
  kinds, a generic one for any other kind.
- For the API (endpoints.py). Register, list, disable, enable and delete webhook
  endpoints; list deliveries a page at a time; replay one.
"""
