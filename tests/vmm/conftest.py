"""The VMM tests drive a fake guest shared with tests/kvm."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "kvm"))
