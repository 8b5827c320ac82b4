"""The HTTP edge shared by the API and the pages: the uvicorn server, body limits, security
headers, error answers (JSON or a page), /docs. Never imports api or web (the error page
renderer is handed in by app.main).
"""
