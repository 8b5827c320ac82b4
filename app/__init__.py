"""The web service: FastAPI app, database, queue and workers. The grading core (grader/) never
imports this package. One package per layer (ARCHITECTURE.md, "Inside app"):

    store/      tables and the database
    auth/       accounts, sessions, login, rate limits, account administration
    grading/    the job queue and the workers
    course/     the course's rules and use cases (uploads, submissions, standings, extensions, ...)
    http/       the HTTP edge: server, body limits, headers, error answers, /docs
    api/        JSON routes under /api/v1, one module per resource
    web/        server-rendered pages and their read models
    cli/        the `grader` console script
    main.py     create_app: the composition root
    settings.py GRADER_* settings; exceptions.py the exceptions every layer may raise
"""
