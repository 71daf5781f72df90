"""The SQL files (migrations/, reports/, checks/, alerts/ and the sync's statements), shipped as package data."""
