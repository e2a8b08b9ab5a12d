"""One hospital over several daemons: one dashboard (front.py, feed.py) and one supervisor
(supervisor.py) for the daemons that split the hospital by ward (docs/scale-out.md)."""
