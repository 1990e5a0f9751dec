"""The REST API: Designate's v2, so python-designateclient and the openstack CLI work.

``app.create_app()`` builds the FastAPI application; ``server`` runs it
with uvicorn (``zoneflow api``, or inside ``zoneflow all-in-one``). Routes
call :mod:`zoneflow.central` only, exactly as the CLI does.
"""
