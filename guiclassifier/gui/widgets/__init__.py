"""One widget per module; widgets take data (numbers), never the engine."""
