"""Training and evaluation loops, one module per task, sharing one trainer contract."""
