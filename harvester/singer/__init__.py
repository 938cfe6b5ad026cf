"""harvester as a Singer tap (``harvester singer``): the catalog, the messages, the sink that
writes them and the state that resumes a tap. See ``docs/singer.md``."""
