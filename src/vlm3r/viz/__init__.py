"""Pictures of scenes and results, for people to look at."""
