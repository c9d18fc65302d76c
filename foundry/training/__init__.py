"""Training: the loop (loop.py: setup / train_step / train), the optimizer and schedule
(optim.py), objectives (objectives.py: OBJECTIVES), losses (losses/: LOSSES), DPO math (dpo.py),
what a run writes (run_files.py), ASHA rung training (rung.py), the seam for several processes
(parallel.py), and the train / validate / sample commands (cli.py).

    from foundry.training.loop import train
"""
