"""Internal. The only code that knows whether I/O blocks: it runs core flows against ports."""
