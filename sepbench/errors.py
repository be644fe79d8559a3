"""Errors a user can cause (bad parameter, unknown name, bad file).

`UserError` subclasses `ValueError`, so library callers can catch the documented
`ValueError`; the CLI catches `UserError` alone and prints it as one line with exit code 2,
so a genuine bug still shows its traceback.
"""


class UserError(ValueError):
    """A mistake in what the user asked for; the message names it and what is allowed."""
