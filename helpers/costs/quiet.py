"""Keep measuring out of the learner's sight: C++ log lines and a one-time prototype notice."""

import os
import sys
import warnings


class quiet_stderr_fd:
    """Send file descriptor 2 to /dev/null for a moment (C++ log lines bypass sys.stderr)."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)
        return False


class quiet_prototype_notice:
    """Ignore PyTorch's one-time notice that nested tensors are a prototype API.

    The Transformer fast path converts a padded batch to a nested tensor internally and PyTorch
    then warns once per process; it is about an API this code does not call.
    """

    def __enter__(self):
        self.catcher = warnings.catch_warnings()
        self.catcher.__enter__()
        warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors")

    def __exit__(self, *exc):
        return self.catcher.__exit__(*exc)
