"""Who may connect, what they may do, whom they may see, and the trail of every access.

No Flask here: the API layer (gateway/api) authenticates each request into a
:class:`~gateway.security.principal.Principal` and asks this package whether it may proceed.
"""
