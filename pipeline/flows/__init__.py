"""The Luigi tasks users run: ``TrainAll`` and its per-label ``TrainModel``, demo data."""
