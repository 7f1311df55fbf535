"""Operations on the whole store: backup and restore, per-workflow export and import (docs/operations.md).

It sits above every other app, because a backup reads all their tables and an import writes the workflows'.
"""
