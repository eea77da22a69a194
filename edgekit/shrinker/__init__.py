"""``edgekit shrink`` / ``edgekit.shrink(...)``: from a fine-tuned model to the one file to ship
(issue 26); see ``shrinker.run``. The package is not called ``shrink``: importing a submodule
``edgekit.shrink`` would bind that module over the public function ``edgekit.shrink``."""
