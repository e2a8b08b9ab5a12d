"""The dashboard's defences that are not request handlers: the login throttle and its
bounded password-check pool, trusted proxies and allowed Host names, the summary of
refused requests (docs/security.md)."""
