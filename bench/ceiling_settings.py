"""The benchmark's web server settings: production's, plus the ceiling route (bench only).

``bench/topology.py`` starts the REST server with this module and ``bench/`` on the path; the
product's own URLs never contain the ceiling.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "ceiling_urls"
