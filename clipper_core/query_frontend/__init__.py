"""The query frontend: REST predictions, query processing, model queues, RPC to containers.

Run it with ``python -m clipper_core.query_frontend`` (or ``clipper-query-frontend``). The
composition root is :mod:`clipper_core.query_frontend.server`; importing this package imports
nothing else, so each module can be loaded alone.
"""
