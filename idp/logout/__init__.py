"""Single logout: ending a citizen's single sign-on session and telling every e-service that
shared it (OpenID Connect RP-Initiated, Back-Channel and Front-Channel Logout 1.0).

- `participants`: which e-services a session served (written when a code is issued).
- `ending`: ending one session (`log_out`), all of a citizen's (`logout_everywhere`, when all
  their sessions are ended), or everything the account obtained (`end_everything`, when its
  credentials change or it is recovered or disabled).
- `outbox`, `delivery`: back-channel logout tokens, delivered at once and retried until they
  arrive (a persistent outbox, a background worker and `idp janitor`).
- `request`, `pages`, `views`: the `end_session_endpoint` and its pages.
"""
