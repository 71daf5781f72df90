"""The SQL files (migrations/, reports/, checks/ and the sync's statements), shipped as package data."""
