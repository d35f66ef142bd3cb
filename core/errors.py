"""Errors whose message is meant for the person who caused them."""


class UserError(Exception):
    """Bad input or a refused action; the message is one friendly line and nothing was written."""
