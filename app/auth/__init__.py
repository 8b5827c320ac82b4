"""Who is asking: accounts (users, argon2 passwords, hashed API tokens, activation links), sessions
(Bearer token or signed cookie, CSRF), the login use case, rate limits, and the account
administration the `grader user/roster/token` commands use. Builds on store only.
"""
