"""`queue-hooks api`: the admin HTTP API of contract §8 and the page of §10 (issue 11).

FastAPI on uvicorn. The layout: `app.py` builds the application, `auth.py` is the token
dependency, `rights.py` the pure permission decisions, `models.py` the pydantic schema of
every body and answer, `errors.py` the one error object, `routes/` the thin routes. All SQL
and every admin rule is the store's (worker/store/admin.py), shared with the command line.
"""
