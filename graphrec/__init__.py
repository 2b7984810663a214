"""graphrec: a graph-centric recommender platform."""

__version__ = "0.1.0"
