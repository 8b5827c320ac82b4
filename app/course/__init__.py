"""The course's rules, as use cases on plain values: assessments (TOML -> Assessment), the upload
use case, submissions and their visibility, standings (scoreboard, gradebook), extensions,
regrades, failures grouped across the class, similarity reports, a handin's source for reading.
Builds on auth, grading (to queue jobs) and store; never on the edges (http, api, web, cli).
"""
