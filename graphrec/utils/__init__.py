"""Ground floor of the package: atomic writes and the one lock (``io``), crash-test hooks
(``faults``), seeding (``seed``) and the command-line look (``console``).

Nothing here imports another ``graphrec`` package.
"""
