"""Training and evaluation of the SkinScan model on HAM10000.

Where things are: ``train`` (the loop) runs on ``config`` (a run's settings), ``run_data``
(split, decoded images, batches), ``augment``, ``optim``, ``devices``, ``validation``,
``checkpoints``, ``averaging`` (the mean of the last epochs' weights), ``losses`` and
``distill`` (teacher models' probabilities as soft targets); ``export`` calibrates
a finished run (``calibration``) and fits the "unknown" gate (``gate``); ``evaluate`` scores
a shipped model (``metrics``, ``plots``, ``card_doc``). The ``cli_*`` modules are the
``skinscan train`` and ``skinscan evaluate`` commands.
"""
