"""The Daphne wing: runasgi, lifespan-daphne, their options, the reloader; stress and soak."""
