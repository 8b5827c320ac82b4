"""Storage: the tables (models.py; migrations/ holds their Alembic history) and the database
(db.py: engine, sessions, schema check, the doorbells that wake idle workers). Imports no other
layer of the service.
"""
