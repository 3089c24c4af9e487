"""The routes of contract §8, thin: parse (models), authorise (auth), call the store."""
